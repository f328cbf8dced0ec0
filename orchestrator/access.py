"""Who may see what (R7-confidential): a customer sees only their own resources, and anything
else is answered exactly as if it did not exist."""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from orchestrator.auth import Principal
from orchestrator.errors import Forbidden, InvalidRequest, NotFound
from orchestrator.models import Customer, Invoice, Job, Vps


def _valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def visible_vps(session: Session, principal: Principal, vps_id: str) -> Vps:
    vps = session.get(Vps, vps_id) if _valid_uuid(vps_id) else None
    if vps is None or (not principal.is_staff and vps.customer_id != principal.customer_id):
        raise NotFound(f"no VPS {vps_id[:64]!r}")
    return vps


def visible_job(session: Session, principal: Principal, job_id: str) -> Job:
    job = session.get(Job, job_id) if _valid_uuid(job_id) else None
    if job is not None and not principal.is_staff:
        vps = session.get(Vps, job.vps_id) if job.vps_id else None
        if vps is None or vps.customer_id != principal.customer_id:
            job = None
    if job is None:
        raise NotFound(f"no job {job_id[:64]!r}")
    return job


def owner_for_create(session: Session, principal: Principal, customer: str | None) -> int:
    """Customers order for themselves; staff order on behalf of a named customer."""
    if not principal.is_staff:
        if customer is not None:
            raise Forbidden("a customer orders only for themselves; leave 'customer' out")
        if principal.customer_id is None:
            raise Forbidden("this token belongs to no customer")
        return principal.customer_id
    if not customer:
        raise InvalidRequest("staff must name the 'customer' the VPS is for")
    record = session.exec(select(Customer).where(Customer.name == customer)).first()
    if record is None or record.id is None:
        raise InvalidRequest(f"no customer named {customer[:100]!r}")
    return record.id


def visible_invoice(session: Session, principal: Principal, invoice_id: str) -> Invoice:
    """R7-confidential: another customer's invoice is as absent as a missing one."""
    invoice = session.get(Invoice, invoice_id) if _valid_uuid(invoice_id) else None
    if invoice is None or (not principal.is_staff and invoice.customer_id != principal.customer_id):
        raise NotFound(f"no invoice {invoice_id}")
    return invoice
