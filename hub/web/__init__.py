"""hub/web"""
