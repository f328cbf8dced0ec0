"""Lists that scale: keyset pagination.

A list answers ``{"items": [...], "next": CURSOR or null}`` and takes ``?limit=`` (1 to
``MAX_LIMIT``, default ``DEFAULT_LIMIT``) and ``?cursor=`` (the ``next`` of the previous page,
with the same filters).  The cursor is the sort key of the page's last row, opaque to the client
(base64url of JSON): the next page is read from an index where that key leaves off, never by
OFFSET, so a page costs the same deep in the list as at its head, and rows inserted meanwhile
neither shift nor repeat what the client has already read.  Lists are newest first.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_
from sqlmodel import col
from sqlmodel.sql.expression import SelectOfScalar

from orchestrator.core.errors import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = Field(description="Give it as ?cursor= (with the same filters) for the next page; "
                                         "null on the last page")


Q = TypeVar("Q")


def filtered(query: SelectOfScalar[Q], equal: Iterable[tuple[Any, Any]], moment: Any,
             since: datetime | None, until: datetime | None) -> SelectOfScalar[Q]:
    """``query`` narrowed to the filters given: each (column, value) pair whose value is not None,
    and ``since`` <= ``moment`` < ``until``."""
    for column, value in equal:
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(col(moment) >= since)
    if until is not None:
        query = query.where(col(moment) < until)
    return query


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items a page holds at most")]
Cursor = Annotated[str | None, Query(max_length=500, description="The `next` of the previous page")]


def encode(key: dict[str, Any]) -> str:
    plain = {name: value.isoformat() if isinstance(value, datetime) else value for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _field(value: Any, kind: type) -> Any:
    if kind is datetime:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def decode(cursor: str | None, fields: dict[str, type]) -> dict[str, Any] | None:
    """The sort key a cursor carries, checked field by field (datetimes travel as ISO text); a
    cursor that is not one of ours (or not for this list) is refused, never half-read."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(key, dict) and set(key) == set(fields):
            key = {name: _field(key[name], kind) for name, kind in fields.items()}
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, dict) or set(key) != set(fields) or any(value is None for value in key.values()):
        raise InvalidRequest("cursor: not a cursor of this list (give the `next` of the previous page)")
    return key


def newest_first(query: SelectOfScalar[Q], created: Any, ident: Any, cursor: str | None,
                 limit: int) -> SelectOfScalar[Q]:
    """``query`` ordered by (``created``, ``ident``) descending, from where ``cursor`` left off,
    one row more than a page (to know whether another follows)."""
    after = decode(cursor, {"at": datetime, "id": str})
    if after is not None:
        query = query.where(or_(col(created) < after["at"],
                                and_(col(created) == after["at"], col(ident) < after["id"])))
    return query.order_by(col(created).desc(), col(ident).desc()).limit(limit + 1)


def following(rows: Any, limit: int) -> str | None:
    """The cursor of the page after ``rows`` (read by ``newest_first``), None when it is the last."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode({"at": last.created_at, "id": last.id})
