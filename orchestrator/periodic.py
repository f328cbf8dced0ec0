"""Imports every module that registers a periodic task (orchestrator/ticker)."""

import orchestrator.billing_run  # noqa: F401  (R8.2-rent: rent invoices, SYNTEC revision, automatic defaults)
import orchestrator.reconciler as _reconciler  # noqa: F401  (R5.2-keep-running: drift, restart)
import orchestrator.traffic as _traffic  # noqa: F401  (R5.4-hours: hourly traffic per VPS)
