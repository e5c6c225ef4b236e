"""hub/services"""
