"""hub/rules"""
