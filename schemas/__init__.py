"""Canonical record schemas, code tables and validation suites."""
