"""Bodies of /v1 requests and answers: plans staff publish and the orders customers make from
them (R2-locations, R3-terms, R8.1-setup-fee, R8.2-rent, R8.6-billing)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.billing import InvoiceOut
from api.schemas.jobs import JobOut
from api.schemas.subscriptions import SubscriptionOut
from api.schemas.types import Fee, Price
from api.schemas.vps import VpsOut
from orchestrator.operations.create import VpsName

ImageName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
SiteName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9._-]*$",
                      description="How customers name it when they order (lowercase, digits, . _ -)")
    name: str = Field(min_length=1, max_length=100)
    vcpus: int = Field(ge=1, le=1024)
    memory_mib: int = Field(ge=64, le=16 * 1024 * 1024)
    disk_gib: int = Field(ge=1, le=1024 * 1024)
    images: list[ImageName] = Field(default_factory=list, max_length=100,
                                    description="The images it may be ordered with; empty: any registered image")
    sites: list[SiteName] = Field(default_factory=list, max_length=23,
                                  description="R2-locations: the sites it is offered in; empty: any of the 23")
    terms: list[int] = Field(min_length=1, max_length=5, description="R3-terms: initial terms offered, in months "
                                                                     "(among 1, 3, 6, 12, 24)")
    monthly_price_ht: Price = Field(description="R8.2-rent: rent per month, euros HT (R8.3-ht)")
    setup_fee_ht: Fee = Field(Decimal("0"), description="R8.1-setup-fee: euros HT, on the first invoice")
    active: bool = True


class PlanPatch(BaseModel):
    """What is given changes; `active: false` retires the plan (what was ordered stays)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=100)
    vcpus: int | None = Field(None, ge=1, le=1024)
    memory_mib: int | None = Field(None, ge=64, le=16 * 1024 * 1024)
    disk_gib: int | None = Field(None, ge=1, le=1024 * 1024)
    images: list[ImageName] | None = Field(None, max_length=100)
    sites: list[SiteName] | None = Field(None, max_length=23)
    terms: list[int] | None = Field(None, min_length=1, max_length=5)
    monthly_price_ht: Price | None = None
    setup_fee_ht: Fee | None = None
    active: bool | None = None


class PlanOut(BaseModel):
    id: str
    code: str
    name: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    images: list[str] = Field(description="empty: any registered image")
    sites: list[str] = Field(description="empty: any of the contract's sites")
    terms: list[int]
    monthly_price_ht: Decimal
    setup_fee_ht: Decimal
    active: bool
    created_at: datetime | None
    updated_at: datetime | None
    retired_at: datetime | None


class OrderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: str = Field(min_length=1, max_length=36, description="The plan's code or id (GET /v1/plans)")
    term_months: int = Field(description="R3-terms: one of the plan's terms")
    billing_period: str = Field("monthly", max_length=16,
                                description="R8.6-billing: monthly, quarterly, half-yearly or yearly")
    site: SiteName | None = Field(None, description="R2-locations: one of the plan's sites (needed when it has any)")
    image: ImageName
    name: VpsName = Field(description="Hostname: lowercase letters, digits and '-', 1-63 characters")
    ssh_keys: list[Annotated[str, StringConstraints(min_length=1, max_length=16384)]] = Field(
        min_length=1, max_length=100, description="OpenSSH public keys for root (R6.1-root)")
    placement_group: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Anti-affinity: the customer's VPS of one placement group are never on the same host")
    customer: str | None = Field(None, max_length=100, description="staff only: the customer ordering")
    bank_country: str = Field("FR", min_length=2, max_length=2, description="R8.5-payment-methods")
    currency: str = Field("EUR", min_length=3, max_length=3)


class OrderOut(BaseModel):
    id: str
    customer_id: int
    plan_id: str
    plan_code: str
    subscription_id: str
    invoice_id: str
    invoice_number: str
    vps_id: str
    job_id: str
    term_months: int
    billing_period: str
    site: str | None
    image: str
    created_at: datetime | None


class OrderPlaced(BaseModel):
    order: OrderOut
    subscription: SubscriptionOut
    invoice: InvoiceOut = Field(description="R8.1-setup-fee, R8.6-billing: the first invoice, issued at order")
    vps: VpsOut
    job: JobOut
