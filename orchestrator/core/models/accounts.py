"""Who uses the orchestrator: customers, API tokens (hashed, expiring, revocable), and the audit of
access."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DDL, Column, Index, event
from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import UTCDateTime, json_field, time_field


class Role(enum.StrEnum):
    customer = "customer"
    support = "support"
    automation = "automation"


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    email: str = Field(default="", max_length=254)
    language: str = Field(default="fr", max_length=5)
    created_at: datetime | None = time_field(now=True)


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is kept (tokens are 256 random bits, so no need for a slow
    hash: there is nothing to brute-force).  Every token expires (``expires_at``, always set);
    a revoked one stays listed with ``revoked_at``.  An automation token may call only the routes
    its ``scopes`` name (orchestrator/core/auth.py ``SCOPES``); the other roles carry none."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_apitoken_owner", "customer_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    role: Role
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    label: str = Field(default="", max_length=100)
    created_at: datetime | None = time_field(now=True)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = time_field()
    last_used_at: datetime | None = time_field()  # at most a minute late (auth.authenticate)
    scopes: list[str] = json_field(list)


class Audit(SQLModel, table=True):
    """The audit log, append-only (the database refuses to change or delete a row: migration
    0013's triggers).  Every change asked through the API (who, on behalf of which customer, what,
    on which object, from which address, with which answer: api/audit.py), staff access that
    changes nothing but must be traceable (R7-confidential), e.g. opening a VPS's console, and what
    the orchestrator decides by itself (reconciler, host states)."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_audit_vps_newest", "vps_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = time_field(now=True)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    actor: str = Field(index=True, max_length=100)
    action: str = Field(index=True, max_length=64)
    detail: str = Field(default="", max_length=500)
    customer_id: int | None = Field(default=None, index=True)  # on behalf of whom
    object_type: str | None = Field(default=None, max_length=32)
    object_id: str | None = Field(default=None, index=True, max_length=64)
    job_id: str | None = Field(default=None, max_length=36)  # the job the request started
    address: str | None = Field(default=None, max_length=64)  # the client's
    result: int | None = None  # the HTTP status answered


APPEND_ONLY = "the audit log is append-only"


def append_only_ddl(dialect: str) -> list[str]:
    """The statements that make the database refuse UPDATE and DELETE on ``audit``: run when the
    table is created from the models and by migration 0013 on an existing database."""
    if dialect == "postgresql":
        return [f"CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$",
                "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"]
    return [f"CREATE TRIGGER audit_no_{event.lower()} BEFORE {event} ON audit "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END" for event in ("UPDATE", "DELETE")]


for _dialect in ("postgresql", "sqlite"):
    for _statement in append_only_ddl(_dialect):
        event.listen(SQLModel.metadata.tables["audit"], "after_create",
                     DDL(_statement).execute_if(dialect=_dialect))  # type: ignore[no-untyped-call]
