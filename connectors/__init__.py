"""Connectors: one HTTP transport (transport), one declared source per agency over a shared, consent-gated base, and
the DCI client of other regions' platforms; they know agencies, not the hub."""
