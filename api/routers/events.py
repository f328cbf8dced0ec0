"""``GET /v1/events``: the event log (orchestrator/core/eventlog.py) as a server-sent event stream.

Each event is sent as ``id: <event id>``, ``event: <type>``, ``data: <JSON>`` and a blank line; a
comment line (``: keep-alive``) every ``events.heartbeat_seconds`` keeps proxies from closing an
idle stream.  A customer's stream holds their own events only; staff's every event.

Resuming: ``Last-Event-ID`` (what an EventSource sends when it reconnects) or ``?after=`` gives
the last id the client has; the stream starts right after it, so nothing is lost or repeated.
Without either it starts with the events recorded after the request.

Event ids are given in the order the events were recorded; on PostgreSQL a transaction may take
an id and commit after a later one.  The stream never moves past a missing id until it appears,
or for ``events.gap_wait_seconds`` at most (a rolled-back transaction leaves its id unused).

The stream ends when the client leaves, when the token it was opened with is revoked or expires
(checked at each heartbeat; the reconnection is then a 401), or when the server shuts down
(``app.state.closing``, set by api/serving.py and by the application's lifespan)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentPrincipal, EngineDep, SettingsDep
from api.scopes import scoped
from api.serving import closing_event
from orchestrator.core import eventlog
from orchestrator.core.auth import Principal, token_status
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Forbidden, InvalidRequest
from orchestrator.core.models import ApiToken, Event

router = APIRouter(tags=["events"], dependencies=[scoped("events")])

BATCH = 500
open_streams = 0  # in this process (tests watch it)
MEDIA = "text/event-stream"
MAX_ID = 2**63 - 1


@dataclass
class Reader:
    """Reads the events after ``cursor`` that the principal may see, never past a gap younger
    than ``gap_wait`` seconds."""

    engine: Engine
    principal: Principal
    cursor: int
    gap_wait: float
    gap_since: dict[int, float] = field(default_factory=dict)  # first id after a gap -> when first seen
    more: bool = False  # the last read stopped at its batch's end: read again at once

    def valid(self) -> bool:
        """Whether the token the stream was opened with is still good (not revoked, not expired)."""
        if self.principal.token_id is None:
            return True
        with Session(self.engine) as session:
            record = session.get(ApiToken, self.principal.token_id)
            return record is not None and token_status(record) == "active"

    def read(self) -> list[Event]:
        with Session(self.engine) as session:
            ids = session.exec(select(Event.id, Event.customer_id, Event.created_at)
                               .where(col(Event.id) > self.cursor).order_by(col(Event.id)).limit(BATCH)).all()
            wanted: list[int] = []
            last = self.cursor
            old = utcnow() - timedelta(seconds=self.gap_wait)
            self.more = len(ids) == BATCH
            for event_id, customer_id, created_at in ids:
                assert event_id is not None
                if event_id != last + 1 and (created_at is None or created_at > old):
                    first = self.gap_since.setdefault(event_id, time.monotonic())
                    if time.monotonic() - first < self.gap_wait:
                        self.more = False
                        break
                last = event_id
                if self.principal.is_staff or customer_id == self.principal.customer_id:
                    wanted.append(event_id)
            rows = list(session.exec(select(Event).where(col(Event.id).in_(wanted)).order_by(col(Event.id))).all()) \
                if wanted else []
        self.gap_since = {k: v for k, v in self.gap_since.items() if k > last}
        self.cursor = last
        return rows


def frame(event: Event) -> str:
    data = json.dumps({"id": event.id, "type": event.type, "created_at": event.created_at.isoformat()
                       if event.created_at else None, "customer_id": event.customer_id, "vps_id": event.vps_id,
                       "data": event.data}, separators=(",", ":"), sort_keys=True)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


def latest(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.max(Event.id))).one() or 0)


def start_after(last_event_id: str | None, after: int | None) -> int | None:
    if last_event_id is not None and last_event_id.strip():
        value = last_event_id.strip()
        if not value.isdigit() or int(value) > MAX_ID:
            raise InvalidRequest("Last-Event-ID: the id of an event of this stream (a whole number)")
        return int(value)
    return after


async def _wait(closing: Any, seconds: float, seen: int) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not closing.is_set() and eventlog.serial() == seen:
        await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


@router.get("/v1/events", operation_id="stream_events", response_class=StreamingResponse,
            responses={200: {"content": {MEDIA: {}}, "description": "The event stream"}})
async def stream_events(
    request: Request,
    principal: CurrentPrincipal,
    engine: EngineDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(max_length=32, description="Resume after this event")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Resume after this event id "
                                                                    "(Last-Event-ID wins)")] = None,
) -> StreamingResponse:
    """The events the caller may see, as they are recorded (text/event-stream)."""
    if not principal.is_staff and principal.customer_id is None:
        raise Forbidden("this token belongs to no customer")
    start = start_after(last_event_id, after)
    if start is None:
        start = await run_in_threadpool(latest, engine)
    reader = Reader(engine, principal, start, settings.events.gap_wait_seconds)
    closing = closing_event(request.app)
    heartbeat, poll = settings.events.heartbeat_seconds, settings.events.stream_poll_seconds

    async def frames() -> AsyncIterator[str]:
        global open_streams
        open_streams += 1
        try:
            async for chunk in _frames():
                yield chunk
        finally:
            open_streams -= 1

    async def _frames() -> AsyncIterator[str]:
        yield ": stream open\nretry: 2000\n\n"
        beat = time.monotonic()
        while not closing.is_set():
            seen = eventlog.serial()
            for event in await run_in_threadpool(reader.read):
                yield frame(event)
                beat = time.monotonic()
            if time.monotonic() - beat >= heartbeat:
                if not await run_in_threadpool(reader.valid):
                    return  # revoked or expired: the reconnection gets its 401
                yield ": keep-alive\n\n"
                beat = time.monotonic()
            if await request.is_disconnected():
                return
            if not reader.more:
                await _wait(closing, min(poll, heartbeat), seen)

    return StreamingResponse(frames(), media_type=MEDIA,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
