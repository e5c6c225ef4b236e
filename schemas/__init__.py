"""The vocabulary (schemas.vocabulary), canonical record schemas, code tables, agency contracts and validation suites."""
