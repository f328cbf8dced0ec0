"""Imports every module that registers a periodic task (orchestrator/ticker)."""

import orchestrator.billing_run  # noqa: F401  (R8.2-rent: rent invoices, SYNTEC revision, automatic defaults)
