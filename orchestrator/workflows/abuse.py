"""R6.4-blacklist-fee: when a client's spam gets one of the company's addresses or domains
blacklisted, each complaint is invoiced (200 € HT) and the client's VPS named in the complaints
are suspended at once, without notice (reason ``abuse``).  R6.4-spam's partial interruption is
the ``mail-block`` operation."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from orchestrator.contract import billing
from orchestrator.core.auth import Principal
from orchestrator.core.errors import NotFound
from orchestrator.core.models import Customer, Invoice, Vps
from orchestrator.core.settings import Settings
from orchestrator.engine.context import Request
from orchestrator.engine.operation import request
from orchestrator.operations.suspend import SuspendParams, SuspendVps
from orchestrator.workflows import invoicing


@dataclass(frozen=True)
class Complaints:
    invoice: Invoice
    suspend_job_ids: list[str]


def blacklisting(session: Session, settings: Settings, staff: Principal, customer: Customer, complaints: int,
                 note: str, named: list[Vps]) -> Complaints:
    """Invoice ``complaints`` blacklisting complaints and suspend the customer's VPS ``named``
    in them (those that can be suspended now), in the caller's transaction."""
    for vps in named:
        if vps.customer_id != customer.id:
            raise NotFound(f"customer {customer.name} has no VPS {vps.id}")
    fee = billing.blacklist_fee(complaints)
    if note:
        fee = billing.Line(fee.rule, f"{fee.label} ({note})"[:500], fee.amount, fee.taxable)
    assert customer.id is not None
    issued = invoicing.issue(session, customer_id=customer.id, purpose="blacklist", lines=[fee])
    suspended = [request(Request(session, settings, staff, vps), SuspendVps, SuspendParams(reason="abuse")).id
                 for vps in named if vps.status in SuspendVps.allowed_from]
    return Complaints(issued, suspended)
