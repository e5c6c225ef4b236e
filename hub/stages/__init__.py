"""hub/stages"""
