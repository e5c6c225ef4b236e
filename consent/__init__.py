"""Authorizations, the consent gate and the ledger."""
