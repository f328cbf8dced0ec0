"""What staff offer (plans) and what customers ordered from them (orders).

A plan fixes a VPS's sizes, the images, terms (R3-terms) and sites (R2-locations) it may be
ordered with, and its prices before tax (R8.3-ht): the monthly rent (R8.2-rent, invoiced per
billing period, R8.6-billing) and the setup fee (R8.1-setup-fee).  A retired plan (``active``
false) keeps its subscriptions but cannot be ordered any more.  An order links what one
``POST /v1/orders`` recorded at once: the subscription, its first invoice, the VPS and its create
job."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import json_field, money_field, new_id, time_field


class Plan(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    code: str = Field(unique=True, max_length=32)
    name: str = Field(max_length=100)
    vcpus: int
    memory_mib: int
    disk_gib: int
    images: list[str] = json_field(list)  # the images it may be ordered with; empty: any registered image
    sites: list[str] = json_field(list)  # R2-locations: the sites it is offered in; empty: any of them
    terms: list[int] = json_field(list)  # R3-terms: the initial terms offered, in months
    monthly_price_ht: Decimal = money_field()  # R8.2-rent, R8.3-ht: rent per month
    setup_fee_ht: Decimal = money_field()  # R8.1-setup-fee
    active: bool = Field(default=True, index=True)
    created_by: str = Field(default="", max_length=100)
    created_at: datetime | None = time_field(now=True)
    updated_at: datetime | None = time_field(now=True)
    retired_at: datetime | None = time_field()


class Order(SQLModel, table=True):
    # Lists read a page newest first, a customer's own or everyone's (api/pages.py).
    __table_args__ = (Index("ix_order_owner_newest", "customer_id", "created_at", "id"),
                      Index("ix_order_newest", "created_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id")
    plan_id: str = Field(foreign_key="plan.id", index=True, max_length=36)
    subscription_id: str = Field(foreign_key="subscription.id", index=True, max_length=36)
    invoice_id: str = Field(foreign_key="invoice.id", max_length=36)
    vps_id: str = Field(foreign_key="vps.id", index=True, max_length=36)
    job_id: str = Field(foreign_key="job.id", max_length=36)
    term_months: int
    billing_period: str = Field(max_length=16)
    site: str | None = Field(default=None, max_length=64)
    image: str = Field(max_length=64)
    ordered_by: str = Field(max_length=100)
    created_at: datetime | None = time_field(now=True)
