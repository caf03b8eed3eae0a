"""Idempotency keys of money-moving requests (CONTRACT "Idempotency"): the stored answer of a key, written in the
transaction that posts."""
