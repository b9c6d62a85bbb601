"""Reconciler: reads chain state in bulk, compares it with the business records and the
read model, classifies drift and repairs it idempotently (cron or schedule)."""
