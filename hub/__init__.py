"""The verification hub: store, pipeline stages, publication, API and CLI."""
