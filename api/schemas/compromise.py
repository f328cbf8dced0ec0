"""Bodies of /v1 requests and answers: a VPS reported hacked (R6.2)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.types import SmallPrice


class CompromiseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    details: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    cut_off: bool = Field(default=True, description="Cut the network at once (R5.5-cutoff)")
    ssh_keys: list[Annotated[str, StringConstraints(min_length=1, max_length=16384)]] | None = Field(
        default=None, max_length=100,
        description="Root keys of the reinstalled system (default: the keys on record; the client may change them)")


class CompromiseOut(BaseModel):
    id: str
    vps_id: str
    reported_at: datetime | None
    reinstall_not_before: AwareDatetime = Field(
        description="R6.2-notice: three jours ouvrés after the notice, Europe/Paris offset")
    reinstall_job_id: str | None = Field(description="The scheduled reinstall (GET /v1/jobs/{id})")
    image: str | None = Field(description="R6.2-reinstall: the OS of the order")
    customer_agreement_at: datetime | None
    backup_invoice_id: str | None = Field(description="R6.2-backup: ordered and invoiced; starts once paid")
    transfer_invoice_id: str | None = Field(description="R6.2-transfer: ordered and invoiced")
    resolved_at: datetime | None


class AgreementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Where the client's written agreement is (email, letter)")


class ServiceOrderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["backup", "transfer"]
    price_ht: SmallPrice = Field(description="Euros before tax (R8.3-ht)")
    request_note: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The client's emailed request and its acknowledgement")


class KeysBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ssh_keys: list[Annotated[str, StringConstraints(min_length=1, max_length=16384)]] = Field(
        min_length=1, max_length=100)


