"""Lists that scale: keyset pagination.

A list answers ``{"items": [...], "next": CURSOR or null}`` and takes ``?limit=`` (1 to
``MAX_LIMIT``, default ``DEFAULT_LIMIT``) and ``?cursor=`` (the ``next`` of the previous page,
with the same filters).  The cursor is the sort key of the page's last row, opaque to the client
(base64url of JSON): the next page is read from an index where that key leaves off, never by
OFFSET, so a page costs the same deep in the list as at its head, and rows inserted meanwhile
neither shift nor repeat what the client has already read.  Lists are newest first; most take
``?order=asc`` for oldest first (a cursor holds the order it was read in and is refused in the
other).  ``keyset`` and ``page_of`` do it for any list sorted on columns ending with a unique one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, or_
from sqlmodel import Session, col

from orchestrator.core.errors import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = Field(description="Give it as ?cursor= (with the same filters) for the next page; "
                                         "null on the last page")


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def filtered(query: S, equal: Iterable[tuple[Any, Any]], moment: Any,
             since: datetime | None, until: datetime | None) -> S:
    """``query`` narrowed to the filters given: each (column, value) pair whose value is not None,
    and ``since`` <= ``moment`` < ``until`` (aware instants: one without its offset is refused)."""
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise InvalidRequest(f"{name}: give the instant with its offset (e.g. 2026-01-31T00:00:00Z)")
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
Order = Annotated[Literal["desc", "asc"], Query(description="desc: newest first (the default); asc: oldest first")]
Since = Annotated[datetime | None, Query(description="from this instant on (inclusive)")]
Until = Annotated[datetime | None, Query(description="before this instant")]


def encode(key: dict[str, Any]) -> str:
    plain = {name: value.isoformat() if isinstance(value, date) else value for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _field(value: Any, kind: type) -> Any:
    if kind is datetime:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        return moment if moment is not None and moment.tzinfo is not None else None
    if kind is date:
        return date.fromisoformat(value) if isinstance(value, str) else None
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


def _kind(column: Any) -> type:
    sort = column.type
    kind = getattr(sort, "impl_instance", sort).python_type
    return kind if kind in (datetime, date, int, str) else str


def _beyond(keys: Sequence[Any], values: Sequence[Any], order: str) -> Any:
    """Rows after (``order`` desc: before) ``values`` in the lexicographic order of ``keys``."""
    head, value = col(keys[0]), values[0]
    past = head < value if order == "desc" else head > value
    if len(keys) == 1:
        return past
    return or_(past, and_(head == value, _beyond(keys[1:], values[1:], order)))


def keyset(query: S, keys: Sequence[Any], cursor: str | None, limit: int, order: str = "desc") -> S:
    """``query`` sorted on ``keys`` (the last of them unique: the id) in ``order``, from where
    ``cursor`` left off, one row more than a page (to know whether another follows)."""
    fields = {key.key: _kind(key) for key in keys}
    after = decode(cursor, fields | {"o": str})
    if after is not None:
        if after["o"] != order:
            raise InvalidRequest(f"cursor: it was read with order={after['o']}; give the same order "
                                 "(and filters) as for the first page")
        query = query.where(_beyond(keys, [after[name] for name in fields], order))
    sort = [col(key).desc() if order == "desc" else col(key).asc() for key in keys]
    return query.order_by(*sort).limit(limit + 1)


def next_cursor(rows: Sequence[Any], keys: Sequence[Any], limit: int, order: str = "desc",
                of: Callable[[Any], Any] = lambda row: row) -> str | None:
    """The cursor of the page after ``rows`` (read by ``keyset``; ``of`` finds the record holding
    the keys in a row), None when it is the last."""
    if len(rows) <= limit:
        return None
    last = of(rows[limit - 1])
    return encode({key.key: getattr(last, key.key) for key in keys} | {"o": order})


def page_of(session: Session, query: Any, keys: Sequence[Any], cursor: str | None, limit: int,
            order: str = "desc", of: Callable[[Any], Any] = lambda row: row) -> tuple[list[Any], str | None]:
    """A page of ``query`` sorted on ``keys`` (``keyset``) and the cursor of the next one."""
    rows = list(session.exec(keyset(query, keys, cursor, limit, order)).all())
    return rows[:limit], next_cursor(rows, keys, limit, order, of)
