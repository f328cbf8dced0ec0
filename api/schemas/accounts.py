"""Bodies of /v1 requests and answers: customers and API tokens.  A token leaves once, in the
answer to its creation (``NewTokenOut``); no other body carries it or its hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from orchestrator.core.accounts import EMAIL_MAX, NAME_MAX
from orchestrator.core.auth import LABEL_MAX, SCOPES
from orchestrator.core.models import Role
from orchestrator.core.settings import TOKEN_MAX_DAYS

Scope = Annotated[str, StringConstraints(max_length=40)]


class CustomerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)] = Field(
        description="unique; printable, not only digits (routes take a customer's name or id)")
    email: Annotated[str, StringConstraints(min_length=3, max_length=EMAIL_MAX)] = Field(
        description="where the customer's notices go (R6.5-contact)")
    language: Literal["fr", "en"] = Field(description="the language of the customer's notices")


class CustomerOut(BaseModel):
    id: int
    name: str
    email: str
    language: str
    created_at: datetime | None


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role = Field(default=Role.customer, description="customer (the default), support or automation; a "
                                                          "customer makes customer tokens for themselves only")
    customer: Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)] | None = Field(
        default=None, description="staff: the existing customer a customer token belongs to; customers leave it out")
    label: Annotated[str, StringConstraints(max_length=LABEL_MAX)] = Field(
        default="", description="what the token is for (default: the customer's name, or the role)")
    days: Annotated[int, Field(ge=1, le=TOKEN_MAX_DAYS)] | None = Field(
        default=None, description="its lifetime in days (default: VPSCTL_TOKEN_DAYS, 90)")
    scopes: Annotated[list[Scope], Field(max_length=len(SCOPES))] = Field(
        default_factory=list, description="automation tokens only, at least one: " + ", ".join(SCOPES))


class TokenOut(BaseModel):
    id: int
    role: Role
    customer: str | None
    label: str
    scopes: list[str]
    status: Literal["active", "expired", "revoked"]
    created_at: datetime | None
    expires_at: datetime
    last_used_at: datetime | None = Field(description="at most a minute late")
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="the bearer token: shown this once, kept by the server only as a SHA-256")
