"""Connectors: one declared source per agency over a shared, consent-gated base."""
