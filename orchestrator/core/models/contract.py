"""What the contract's workflows record: maintenance windows, compromises and evidence,
erasures, change orders, incidents, breach notices, requests for the Statement of Applicability."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import date_field, json_field, money_field, new_id, time_field


class Maintenance(SQLModel, table=True):
    """A planned maintenance interruption (R5.4) of a host or of some VPS, or (``kind``
    "interruption") another planned interruption, announced beforehand (R5.4-notice)."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_maintenance_kind_starts", "kind", "starts_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    kind: str = Field(default="maintenance", max_length=16)  # maintenance | interruption
    host_id: int | None = Field(default=None, foreign_key="host.id")
    starts_at: datetime | None = time_field(index=True)
    duration_minutes: int
    reason: str = Field(max_length=500)
    created_by: str = Field(max_length=100)
    notice_ids: list[int] = json_field(list)  # the Outbox rows of its notices
    created_at: datetime | None = time_field(now=True)


class MaintenanceVps(SQLModel, table=True):
    """Which VPS a maintenance interrupts (R5.4-frequency is counted per VPS)."""

    maintenance_id: str = Field(foreign_key="maintenance.id", primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", primary_key=True, max_length=36)
    starts_at: datetime | None = time_field(index=True)


class Compromise(SQLModel, table=True):
    """A VPS reported hacked (R6.2): the notice, the reinstall deadline, the client's agreement."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    reported_by: str = Field(max_length=100)
    reported_at: datetime | None = time_field(now=True)
    details: str = Field(max_length=2000)
    notice_outbox_id: int | None = None
    customer_agreement_at: datetime | None = time_field()  # R6.2-notice: written agreement recorded
    customer_agreement_note: str = Field(default="", max_length=500)
    # R6.2-reinstall: the OS of the order form, reinstalled by a deadline job
    image: str | None = Field(default=None, max_length=64)
    reinstall_job_id: str | None = Field(default=None, max_length=36)
    # R6.2-backup / R6.2-transfer: asked by the client, invoiced, started once paid
    backup_invoice_id: str | None = Field(default=None, max_length=36)
    transfer_invoice_id: str | None = Field(default=None, max_length=36)
    resolved_at: datetime | None = time_field()


class Evidence(SQLModel, table=True):
    """R6.3-evidence: what a VPS served publicly when staff checked it, fetched like any visitor
    would (R2-no-guest-management: no login).  The raw response is in state_dir/evidence/<job>.http."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_evidence_vps_newest", "vps_id", "fetched_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    job_id: str = Field(index=True, max_length=36)
    requested_by: str = Field(max_length=100)
    reason: str = Field(max_length=2000)
    url: str = Field(max_length=2100)
    host_header: str | None = Field(default=None, max_length=255)
    fetched_at: datetime | None = time_field(now=True)
    status_code: int | None = None
    headers: list[list[str]] = json_field(list)  # [[name, value], ...] in the order received
    body_sha256: str | None = Field(default=None, max_length=64)
    size_bytes: int = 0  # of the body kept (at most the cap)
    truncated: bool = False
    error: str | None = Field(default=None, max_length=2000)  # unreachable, timed out, malformed


class Erasure(SQLModel, table=True):
    """R10-after: data erased for real (volumes discarded), recorded with what went and why."""

    id: int | None = Field(default=None, primary_key=True)
    vps_id: str = Field(index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    reason: str = Field(max_length=64)
    volumes: list[str] = json_field(list)
    job_id: str | None = Field(default=None, max_length=36)
    at: datetime | None = time_field(now=True)


class ChangeOrder(SQLModel, table=True):
    """R5.1-change-order: a hardware change asked by the client, approved or refused by staff,
    issued as a bon de commande (new configuration and price), run only once the client accepts."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_changeorder_vps_newest", "vps_id", "requested_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str | None = Field(default=None, index=True, unique=True, max_length=32)  # the bon de commande
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    current: dict[str, Any] = json_field(dict)  # {"vcpus", "memory_mib", "disk_gib"} when asked
    requested: dict[str, Any] = json_field(dict)  # the same keys, the new values
    # requested | approved | refused | accepted | done | failed | cancelled
    status: str = Field(default="requested", index=True, max_length=16)
    rent_ht: Decimal | None = money_field(nullable=True)  # new rent per billing period
    fee_ht: Decimal | None = money_field(nullable=True)  # one-off price of the change
    requested_by: str = Field(max_length=100)
    requested_at: datetime | None = time_field(now=True)
    request_note: str = Field(default="", max_length=500)  # the client's words
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = time_field()
    decision_note: str = Field(default="", max_length=500)
    accepted_at: datetime | None = time_field()
    job_id: str | None = Field(default=None, max_length=36)
    closed_at: datetime | None = time_field()  # done, failed or cancelled
    outcome: str = Field(default="", max_length=2000)  # why it failed, who cancelled


class Incident(SQLModel, table=True):
    """R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure: an unavailability of a VPS."""

    # R5.2-keep-running: the reconciler opens at most one open incident per VPS and malfunction,
    # even when several worker processes look at the same drift at once.
    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ux_incident_open_auto", "vps_id", "malfunction", unique=True,
                            sqlite_where=text("resolved_at IS NULL AND opened_by = 'reconciler'"),
                            postgresql_where=text("resolved_at IS NULL AND opened_by = 'reconciler'")),
                      Index("ix_incident_newest", "opened_at", "id"),
                      Index("ix_incident_owner_newest", "customer_id", "opened_at", "id"),
                      Index("ix_incident_vps_newest", "vps_id", "opened_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    malfunction: str = Field(max_length=64)  # stable key: the same key is "the same malfunction"
    description: str = Field(default="", max_length=2000)
    opened_by: str = Field(max_length=100)  # a staff principal, or "reconciler"
    opened_at: datetime | None = time_field(now=True, index=True)
    fix_deadline: datetime | None = time_field()
    force_majeure: bool = False
    force_majeure_note: str = Field(default="", max_length=500)
    resolved_at: datetime | None = time_field()
    resolution: str = Field(default="", max_length=2000)


class BreachNotice(SQLModel, table=True):
    """R10-breach: a formal notice by registered letter for a breach of the terms; the contract
    ends by right at ``cure_by`` unless the breach is recorded remedied before."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_breachnotice_subscription_newest", "subscription_id", "recorded_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    subscription_id: str = Field(foreign_key="subscription.id", index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    breach: str = Field(max_length=2000)
    letter_sent_on: date | None = date_field()
    cure_by: date | None = date_field()
    terminates_at: datetime | None = time_field()  # Europe/Paris start of the day after cure_by
    status: str = Field(default="open", index=True, max_length=16)  # open | remedied | terminated
    job_id: str | None = Field(default=None, max_length=36)
    recorded_by: str = Field(max_length=100)
    recorded_at: datetime | None = time_field(now=True)
    remedied_at: datetime | None = time_field()
    remedied_by: str | None = Field(default=None, max_length=100)
    remedy_note: str = Field(default="", max_length=2000)


class DdaRequest(SQLModel, table=True):
    """R2-dda: a client's request for the Statement of Applicability, disclosed only once the
    security officer approved it and an NDA is signed (its steps are Audit rows ``dda.*``)."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_ddarequest_newest", "requested_at", "id"),
                      Index("ix_ddarequest_owner_newest", "customer_id", "requested_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    purpose: str = Field(max_length=2000)
    requested_by: str = Field(max_length=100)
    requested_at: datetime | None = time_field(now=True)
    approval: str = Field(default="pending", max_length=16)  # pending | approved | refused
    officer: str | None = Field(default=None, max_length=200)  # the security officer who decided
    decided_at: datetime | None = time_field()
    decided_by: str | None = Field(default=None, max_length=100)
    refusal_reason: str = Field(default="", max_length=2000)
    nda_reference: str | None = Field(default=None, max_length=200)
    nda_signed_on: date | None = date_field()
    nda_recorded_by: str | None = Field(default=None, max_length=100)
    nda_recorded_at: datetime | None = time_field()
