"""Database tables.  Times are stored as UTC; JSON columns hold small structured values."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, Index, String, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from orchestrator.clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every engine (SQLite drops offsets)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Money(TypeDecorator[Decimal]):
    """Euros as exact decimal text (SQLite has no decimal type and would round through a float)."""

    impl = String(24)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"money must be a finite Decimal, not {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


def _money(nullable: bool = False) -> Any:
    column: Column[Decimal] = Column(Money(), nullable=nullable)
    return Field(default=None if nullable else Decimal("0"), sa_column=column)


def _date(index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(Date(), nullable=True, index=index))


def _time(now: bool = False, index: bool = False) -> Any:
    column: Column[datetime] = Column(UTCDateTime(), nullable=True, index=index)
    if now:
        return Field(default_factory=utcnow, sa_column=column)
    return Field(default=None, sa_column=column)


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


def new_id() -> str:
    return str(uuid.uuid4())


class Role(enum.StrEnum):
    customer = "customer"
    support = "support"
    automation = "automation"


class VpsStatus(enum.StrEnum):
    building = "building"
    running = "running"
    stopped = "stopped"
    suspended = "suspended"
    cut_off = "cut_off"
    error = "error"
    deleting = "deleting"
    deleted = "deleted"


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"  # a scheduled job called off before it ran (e.g. a payment arrived)


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    email: str = Field(default="", max_length=254)
    language: str = Field(default="fr", max_length=5)
    created_at: datetime | None = _time(now=True)


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is kept (tokens are 256 random bits, so no need for a slow
    hash: there is nothing to brute-force)."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    role: Role
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    label: str = Field(default="", max_length=100)
    created_at: datetime | None = _time(now=True)
    revoked_at: datetime | None = _time()


class Host(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    uri: str = Field(max_length=500)
    site: str = Field(default="", max_length=64)
    state: str = Field(default="up", max_length=16)  # up | down | disabled
    domain_type: str = Field(default="qemu", max_length=16)
    vcpus: int = 0
    memory_mib: int = 0
    disk_gib: int = 0
    pool_name: str = Field(default="vpsctl", max_length=64)
    network_name: str = Field(default="vpsctl", max_length=64)
    updated_at: datetime | None = _time(now=True)


class Image(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=64)
    os: str = Field(max_length=100)
    os_family: str = Field(default="linux", max_length=32)
    format: str = Field(default="qcow2", max_length=16)
    size_bytes: int = 0  # file size of the built image
    virtual_size_bytes: int = 0  # disk size the image describes
    sha256: str = Field(max_length=64)
    path: str = Field(max_length=1000)
    min_disk_gib: int = 1
    min_memory_mib: int = 128
    description: str = Field(default="", max_length=500)
    built_at: datetime | None = _time()


class Vps(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(index=True, max_length=63)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    host_id: int | None = Field(default=None, foreign_key="host.id", index=True)
    image: str = Field(max_length=64)
    vcpus: int
    memory_mib: int
    disk_gib: int
    # Live-resize ceilings, fixed in the definition; beyond them a resize needs a cold restart.
    max_vcpus: int = 0
    max_memory_mib: int = 0
    status: VpsStatus = Field(default=VpsStatus.building, index=True)
    # Bumped by each reinstall: the new root disk and seed live beside the old ones until the new
    # system is up, so a failed reinstall can go back.
    root_generation: int = 0
    # R5.5-cutoff: the network link is down, live and in the definition, until reconnected.
    cut_off: bool = False
    cut_off_reason: str | None = Field(default=None, max_length=64)
    # R6.4-spam: outbound mail (TCP 25, 465, 587) dropped by a filter; everything else flows.
    mail_blocked: bool = False
    suspend_reason: str | None = Field(default=None, max_length=32)
    suspended_by: str | None = Field(default=None, max_length=16)  # role that suspended it
    task: str | None = Field(default=None, max_length=32)
    mac: str = Field(default="", max_length=17)
    # Extra data disks: [{"id", "volume", "size_gib", "target"}]; the root disk is not among them.
    data_disks: list[dict[str, Any]] = _json(list)
    ssh_authorized_keys: list[str] = _json(list)  # public keys only
    ssh_host_keys: list[dict[str, str]] = _json(list)  # public keys + fingerprints only
    addresses: list[str] = _json(list)
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime | None = _time(now=True)
    updated_at: datetime | None = _time(now=True)
    deleted_at: datetime | None = _time()

    @property
    def domain_name(self) -> str:
        # Derived from the UUID, never from user input (names reach libvirt only as escaped text).
        return f"vps-{self.id}"

    @property
    def volume_prefix(self) -> str:
        """Every volume of this VPS, in any pool, starts with this."""
        return f"vps-{self.id}-"

    @property
    def data_disk_gib(self) -> int:
        return sum(int(d["size_gib"]) for d in self.data_disks)

    def root_volume_for(self, generation: int) -> str:
        return f"vps-{self.id}-root.qcow2" if generation == 0 else f"vps-{self.id}-root-{generation}.qcow2"

    def seed_volume_for(self, generation: int) -> str:
        return f"vps-{self.id}-seed.iso" if generation == 0 else f"vps-{self.id}-seed-{generation}.iso"

    @property
    def root_volume(self) -> str:
        return self.root_volume_for(self.root_generation)

    @property
    def seed_volume(self) -> str:
        return self.seed_volume_for(self.root_generation)


class Job(SQLModel, table=True):
    # ix_job_ready: the claim reads only ready jobs (status, not_before <= now), never the deadline
    # jobs waiting for a later instant (bench/queue_bench.py).
    __table_args__ = (UniqueConstraint("requested_by", "idempotency_key"),
                      Index("ix_job_ready", "status", "not_before"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str | None = Field(default=None, foreign_key="vps.id", index=True)
    kind: str = Field(max_length=32)
    params: dict[str, Any] = _json(dict)
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    step: str | None = Field(default=None, max_length=64)
    steps_done: list[str] = _json(list)
    steps_total: int = 0
    attempts: int = 0
    max_attempts: int = 3
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = _time()
    error: str | None = Field(default=None, max_length=4000)
    requested_by: str = Field(default="", max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)
    created_at: datetime | None = _time(now=True, index=True)
    not_before: datetime | None = _time(now=True)  # may run from then: asked, retried later, or scheduled
    # A deadline job (reinstall after notice, erasure, end of term): it waits for this instant
    # without holding up the VPS's other jobs, then runs in its turn.
    scheduled_at: datetime | None = _time(index=True)
    started_at: datetime | None = _time()
    finished_at: datetime | None = _time()


class JobEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=36)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    at: datetime | None = _time(now=True)
    step: str = Field(max_length=64)
    status: str = Field(max_length=16)  # started | done | skipped | failed | info | retry
    message: str = Field(default="", max_length=2000)
    actor: str = Field(default="", max_length=100)


class Maintenance(SQLModel, table=True):
    """A planned maintenance interruption (R5.4) of a host or of some VPS, or (``kind``
    "interruption") another planned interruption, announced beforehand (R5.4-notice)."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    kind: str = Field(default="maintenance", max_length=16)  # maintenance | interruption
    host_id: int | None = Field(default=None, foreign_key="host.id")
    starts_at: datetime | None = _time(index=True)
    duration_minutes: int
    reason: str = Field(max_length=500)
    created_by: str = Field(max_length=100)
    notice_ids: list[int] = _json(list)  # the Outbox rows of its notices
    created_at: datetime | None = _time(now=True)


class MaintenanceVps(SQLModel, table=True):
    """Which VPS a maintenance interrupts (R5.4-frequency is counted per VPS)."""

    maintenance_id: str = Field(foreign_key="maintenance.id", primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", primary_key=True, max_length=36)
    starts_at: datetime | None = _time(index=True)


class Compromise(SQLModel, table=True):
    """A VPS reported hacked (R6.2): the notice, the reinstall deadline, the client's agreement."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    reported_by: str = Field(max_length=100)
    reported_at: datetime | None = _time(now=True)
    details: str = Field(max_length=2000)
    notice_outbox_id: int | None = None
    customer_agreement_at: datetime | None = _time()  # R6.2-notice: written agreement recorded
    customer_agreement_note: str = Field(default="", max_length=500)
    # R6.2-reinstall: the OS of the order form, reinstalled by a deadline job
    image: str | None = Field(default=None, max_length=64)
    reinstall_job_id: str | None = Field(default=None, max_length=36)
    # R6.2-backup / R6.2-transfer: asked by the client, invoiced, started once paid
    backup_invoice_id: str | None = Field(default=None, max_length=36)
    transfer_invoice_id: str | None = Field(default=None, max_length=36)
    resolved_at: datetime | None = _time()


class Audit(SQLModel, table=True):
    """Access that changes nothing but must be traceable (R7-confidential: staff access is logged),
    e.g. opening a VPS's console."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = _time(now=True)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    actor: str = Field(max_length=100)
    action: str = Field(max_length=64)
    detail: str = Field(default="", max_length=500)


class Evidence(SQLModel, table=True):
    """R6.3-evidence: what a VPS served publicly when staff checked it, fetched like any visitor
    would (R2-no-guest-management: no login).  The raw response is in state_dir/evidence/<job>.http."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    job_id: str = Field(index=True, max_length=36)
    requested_by: str = Field(max_length=100)
    reason: str = Field(max_length=2000)
    url: str = Field(max_length=2100)
    host_header: str | None = Field(default=None, max_length=255)
    fetched_at: datetime | None = _time(now=True)
    status_code: int | None = None
    headers: list[list[str]] = _json(list)  # [[name, value], ...] in the order received
    body_sha256: str | None = Field(default=None, max_length=64)
    size_bytes: int = 0  # of the body kept (at most the cap)
    truncated: bool = False
    error: str | None = Field(default=None, max_length=2000)  # unreachable, timed out, malformed


class Backup(SQLModel, table=True):
    """A copy of a VPS's disk(s) kept in a storage pool of its host."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    kind: str = Field(max_length=32)  # manual | before_reinstall
    pool: str = Field(max_length=64)
    volume: str = Field(max_length=200)
    size_bytes: int = 0
    status: str = Field(default="available", max_length=16)  # creating | available | failed | deleted
    note: str = Field(default="", max_length=500)
    created_at: datetime | None = _time(now=True)


class HostImage(SQLModel, table=True):
    """An image's base volume, fully uploaded to a host's pool (recorded only after the upload
    finished, so a volume left half-written by a crash is never used as a backing file)."""

    host_id: int = Field(foreign_key="host.id", primary_key=True)
    image_name: str = Field(primary_key=True, max_length=64)
    sha256: str = Field(primary_key=True, max_length=64)
    volume: str = Field(max_length=200)
    path: str = Field(max_length=1000)
    uploaded_at: datetime | None = _time(now=True)


class Outbox(SQLModel, table=True):
    """An email waiting to be sent, or sent (orchestrator/notify).  Rendered when queued, so a
    missing value fails in the caller's request; rendered again when sent, from the same context,
    so deadlines that count from the sending (R6.2-notice, R8.7-default) are computed then.

    R6.5-contact: with a customer, the address is the one on file when the message is sent;
    ``to_address`` records the address queued, then the address actually used.  ``sent_at`` is the
    instant the SMTP server accepted the message: the deadlines count from it."""

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    to_address: str = Field(default="", max_length=254)
    language: str = Field(default="fr", max_length=5)
    template: str = Field(max_length=64)
    subject: str = Field(default="", max_length=500)
    body_text: str = ""
    context: dict[str, Any] = _json(dict)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    job_id: str | None = Field(default=None, index=True, max_length=36)
    status: str = Field(default="pending", index=True, max_length=16)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime | None = _time(now=True, index=True)
    last_error: str | None = Field(default=None, max_length=2000)
    message_id: str | None = Field(default=None, max_length=300)
    created_at: datetime | None = _time(now=True)
    sent_at: datetime | None = _time()


class Subscription(SQLModel, table=True):
    """The contract for one VPS (R3-terms): its term, billing period, prices and how it ends."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    vps_id: str | None = Field(default=None, foreign_key="vps.id", index=True, max_length=36)
    term_months: int  # R3-terms: 1, 3, 6, 12 or 24
    billing_period: str = Field(default="monthly", max_length=16)  # R8.6-billing
    started_on: date | None = _date()
    rent_ht: Decimal = _money()  # per billing period (R8.2-rent, R8.3-ht)
    setup_fee_ht: Decimal = _money()  # R8.1-setup-fee
    contract_index: Decimal | None = _money(nullable=True)  # R8.4-syntec reference index
    bank_country: str = Field(default="FR", max_length=2)  # R8.5-payment-methods
    currency: str = Field(default="EUR", max_length=3)
    status: str = Field(default="active", index=True, max_length=16)  # active | ending | terminated
    ends_on: date | None = _date()  # first day no longer covered, once an end is known
    end_reason: str | None = Field(default=None, max_length=32)  # non_renewal | reversibility | nonpayment
    non_renewal_received_at: datetime | None = _time()
    non_renewal_channel: str | None = Field(default=None, max_length=16)  # online | registered_letter
    reversibility_received_at: datetime | None = _time()
    terminated_at: datetime | None = _time()
    created_at: datetime | None = _time(now=True)


class Invoice(SQLModel, table=True):
    """An invoice (R8): lines before tax, VAT at the rate in force on the issue date."""

    # R8.2-rent: one invoice per subscription, purpose and period, even with several workers.
    __table_args__ = (UniqueConstraint("subscription_id", "purpose", "period_start"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(index=True, unique=True, max_length=32)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    subscription_id: str | None = Field(default=None, foreign_key="subscription.id", index=True, max_length=36)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    # setup | rent | change_order | compromise_backup | compromise_transfer | payment_incident |
    # blacklist | late_payment
    purpose: str = Field(max_length=32)
    purpose_ref: str | None = Field(default=None, index=True, max_length=36)
    period_start: date | None = _date()
    period_end: date | None = _date()
    issued_at: datetime | None = _time(now=True)
    due_on: date | None = _date(index=True)
    lines: list[dict[str, Any]] = _json(list)  # [{"label", "amount_ht", "rule", "vat"}] (amounts as text)
    total_ht: Decimal = _money()
    total_vat: Decimal = _money()
    total_ttc: Decimal = _money()
    status: str = Field(default="open", index=True, max_length=16)  # open | paid | cancelled
    paid_at: datetime | None = _time()
    payment_method: str | None = Field(default=None, max_length=16)


class SyntecIndex(SQLModel, table=True):
    """R8.4-syntec: a published SYNTEC index value, by the month it is published for."""

    month: date | None = Field(default=None, sa_column=Column(Date(), primary_key=True))
    value: Decimal = _money()
    recorded_by: str = Field(default="", max_length=100)
    recorded_at: datetime | None = _time(now=True)


class PaymentDefault(SQLModel, table=True):
    """R8.7-default, R10-nonpayment: an unpaid invoice followed up: suspension, formal notice,
    erasure not before five days after it, termination fifteen days after it."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    invoice_id: str = Field(foreign_key="invoice.id", index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    opened_at: datetime | None = _time(now=True)
    opened_by: str = Field(max_length=100)
    notice_outbox_id: int | None = None
    status: str = Field(default="open", index=True, max_length=16)  # open | settled | terminated
    settled_at: datetime | None = _time()
    terminated_at: datetime | None = _time()


class Erasure(SQLModel, table=True):
    """R10-after: data erased for real (volumes discarded), recorded with what went and why."""

    id: int | None = Field(default=None, primary_key=True)
    vps_id: str = Field(index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    reason: str = Field(max_length=64)
    volumes: list[str] = _json(list)
    job_id: str | None = Field(default=None, max_length=36)
    at: datetime | None = _time(now=True)


class ChangeOrder(SQLModel, table=True):
    """R5.1-change-order: a hardware change asked by the client, approved or refused by staff,
    issued as a bon de commande (new configuration and price), run only once the client accepts."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str | None = Field(default=None, index=True, unique=True, max_length=32)  # the bon de commande
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    current: dict[str, Any] = _json(dict)  # {"vcpus", "memory_mib", "disk_gib"} when asked
    requested: dict[str, Any] = _json(dict)  # the same keys, the new values
    # requested | approved | refused | accepted | done | failed | cancelled
    status: str = Field(default="requested", index=True, max_length=16)
    rent_ht: Decimal | None = _money(nullable=True)  # new rent per billing period
    fee_ht: Decimal | None = _money(nullable=True)  # one-off price of the change
    requested_by: str = Field(max_length=100)
    requested_at: datetime | None = _time(now=True)
    request_note: str = Field(default="", max_length=500)  # the client's words
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = _time()
    decision_note: str = Field(default="", max_length=500)
    accepted_at: datetime | None = _time()
    job_id: str | None = Field(default=None, max_length=36)
    closed_at: datetime | None = _time()  # done, failed or cancelled
    outcome: str = Field(default="", max_length=2000)  # why it failed, who cancelled


class Incident(SQLModel, table=True):
    """R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure: an unavailability of a VPS."""

    # R5.2-keep-running: the reconciler opens at most one open incident per VPS and malfunction,
    # even when several worker processes look at the same drift at once.
    __table_args__ = (Index("ux_incident_open_auto", "vps_id", "malfunction", unique=True,
                            sqlite_where=text("resolved_at IS NULL AND opened_by = 'reconciler'"),
                            postgresql_where=text("resolved_at IS NULL AND opened_by = 'reconciler'")),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    malfunction: str = Field(max_length=64)  # stable key: the same key is "the same malfunction"
    description: str = Field(default="", max_length=2000)
    opened_by: str = Field(max_length=100)  # a staff principal, or "reconciler"
    opened_at: datetime | None = _time(now=True, index=True)
    fix_deadline: datetime | None = _time()
    force_majeure: bool = False
    force_majeure_note: str = Field(default="", max_length=500)
    resolved_at: datetime | None = _time()
    resolution: str = Field(default="", max_length=2000)


class TrafficSample(SQLModel, table=True):
    """Bytes through a VPS's interface during one hour (R5.4-hours: least harmful maintenance
    hour from measured traffic).  ``rx``/``tx`` are deltas over the hour starting ``hour``."""

    vps_id: str = Field(foreign_key="vps.id", primary_key=True, max_length=36)
    hour: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), primary_key=True))
    rx_bytes: int = 0
    tx_bytes: int = 0


class TrafficCounter(SQLModel, table=True):
    """The last interface counters read for a VPS, to turn the next reading into a delta."""

    vps_id: str = Field(foreign_key="vps.id", primary_key=True, max_length=36)
    rx_bytes: int = 0
    tx_bytes: int = 0
    read_at: datetime | None = _time()


class BreachNotice(SQLModel, table=True):
    """R10-breach: a formal notice by registered letter for a breach of the terms; the contract
    ends by right at ``cure_by`` unless the breach is recorded remedied before."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    subscription_id: str = Field(foreign_key="subscription.id", index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    breach: str = Field(max_length=2000)
    letter_sent_on: date | None = _date()
    cure_by: date | None = _date()
    terminates_at: datetime | None = _time()  # Europe/Paris start of the day after cure_by
    status: str = Field(default="open", index=True, max_length=16)  # open | remedied | terminated
    job_id: str | None = Field(default=None, max_length=36)
    recorded_by: str = Field(max_length=100)
    recorded_at: datetime | None = _time(now=True)
    remedied_at: datetime | None = _time()
    remedied_by: str | None = Field(default=None, max_length=100)
    remedy_note: str = Field(default="", max_length=2000)


class DdaRequest(SQLModel, table=True):
    """R2-dda: a client's request for the Statement of Applicability, disclosed only once the
    security officer approved it and an NDA is signed (its steps are Audit rows ``dda.*``)."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    purpose: str = Field(max_length=2000)
    requested_by: str = Field(max_length=100)
    requested_at: datetime | None = _time(now=True)
    approval: str = Field(default="pending", max_length=16)  # pending | approved | refused
    officer: str | None = Field(default=None, max_length=200)  # the security officer who decided
    decided_at: datetime | None = _time()
    decided_by: str | None = Field(default=None, max_length=100)
    refusal_reason: str = Field(default="", max_length=2000)
    nda_reference: str | None = Field(default=None, max_length=200)
    nda_signed_on: date | None = _date()
    nda_recorded_by: str | None = Field(default=None, max_length=100)
    nda_recorded_at: datetime | None = _time()
