"""hub/federation"""
