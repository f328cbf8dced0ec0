"""Who uses the orchestrator: customers, API tokens (hashed, expiring, revocable), and the audit of
access."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Column
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
    """Access that changes nothing but must be traceable (R7-confidential: staff access is logged),
    e.g. opening a VPS's console."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = time_field(now=True)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    actor: str = Field(max_length=100)
    action: str = Field(max_length=64)
    detail: str = Field(default="", max_length=500)
