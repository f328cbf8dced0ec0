"""The contract's workflows and the periodic duties, above the operations they drive.

Each module records what the contract needs (change orders, compromises, payment defaults,
subscriptions and invoices, incidents, maintenance windows, breach notices, DDA requests) and
asks for operations through ``orchestrator.engine.operation.request``; it hears how they went by
subscribing to their lifecycle events (``orchestrator.engine.events``), never by being called
from below.  Importing this package subscribes every workflow and registers every operation and
periodic duty: the command line and the HTTP edge import it before starting a worker.

May import everything in ``orchestrator`` but ``cli``.
"""

from orchestrator import operations  # noqa: F401  (every operation registers itself)
from orchestrator.workflows import (  # noqa: F401  (each subscribes to the events it follows)
    abuse,
    billing_run,
    breach,
    change_orders,
    compromise,
    dda,
    drain,
    evacuation,
    hooks,
    incident_deadline,
    incidents,
    invoicing,
    maintenance,
    nonpayment,
    reconciler,
    subscriptions,
    termination,
    traffic,
)
