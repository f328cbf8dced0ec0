"""The audit trail of the API (an ASGI middleware inside the Guard, so it knows the principal).

Every request that may change something (any method but GET, HEAD and OPTIONS) made with a valid
token is recorded before its answer leaves: who (the token's principal), on behalf of which
customer (the customer's own token, or the customer owning the object staff acted on), what (the
route's name, e.g. ``resize_vps``, with the method and path), on which object (the path's first
parameter, or the object the answer made), the job it started, from which address, and the
status answered, refusals included.  Answers are held until the row is written: no change is
answered without its record.  A request the Guard answers itself (401, 413, 429, an idempotent
replay) reaches no route and changes nothing: it is not recorded.  Rows are never changed or
deleted (the database refuses: migration 0013); staff read them with ``GET /v1/audit`` (R7-confidential).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.guard import ASGIApp, Message, Receive, Scope, Send
from orchestrator.core.auth import Principal
from orchestrator.core.models import Audit, Customer, Job, Vps

READS = frozenset({"GET", "HEAD", "OPTIONS"})
KEPT = 1 << 16  # of an answer's body, read for the object it made


def _kind(segment: str) -> str:
    """The kind of record a path segment names: ``change-orders`` → change-order, ``vps`` → vps."""
    return segment if segment in ("vps", "evidence") else segment.removesuffix("s")


def _object(scope: Scope, answer: Any) -> tuple[str | None, str | None]:
    """The object acted on: the path's first parameter, named by the segment before it
    (``/v1/change-orders/{order_id}`` → change-order), else what the answer made (``{"vps":
    {"id"}}``; ``{"id"}`` of the kind the route's path ends with: ``POST /v1/plans`` → plan)."""
    route = scope.get("route")
    segments = [part for part in str(getattr(route, "path", "")).split("/") if part]
    for name, value in (scope.get("path_params") or {}).items():
        marker = "{" + name
        before = [segments[i - 1] for i, part in enumerate(segments) if part.startswith(marker) and i > 0]
        return (_kind(before[0]) if before else name.removesuffix("_id")), str(value)[:64]
    if isinstance(answer, dict):
        if isinstance(answer.get("vps"), dict) and "id" in answer["vps"]:
            return "vps", str(answer["vps"]["id"])
        if "id" in answer and not isinstance(answer["id"], dict | list):
            return (_kind(segments[-1]) if segments else None), str(answer["id"])[:64]
    return None, None


def _job(answer: Any) -> str | None:
    if isinstance(answer, dict):
        job = answer.get("job")
        if isinstance(job, dict) and isinstance(job.get("id"), str):
            return str(job["id"])[:36]
    return None


class AuditTrail:
    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("state", {}).get("principal")
        if scope["type"] != "http" or scope["method"] in READS or not isinstance(principal, Principal):
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        recorded = False

        async def record_then_send(message: Message) -> None:
            nonlocal recorded
            if recorded:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                recorded = True
                await run_in_threadpool(self._record, scope, principal, held)
                for kept in held:
                    await send(kept)

        await self.app(scope, receive, record_then_send)

    def _record(self, scope: Scope, principal: Principal, held: list[Message]) -> None:
        status = next((int(m["status"]) for m in held if m["type"] == "http.response.start"), 0)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        try:
            answer = json.loads(body[:KEPT]) if body and len(body) <= KEPT else None
        except ValueError:
            answer = None
        object_type, object_id = _object(scope, answer)
        route = scope.get("route")
        action = getattr(route, "name", None) or "unrouted"
        client = scope.get("client")
        with Session(self.engine) as session:
            customer_id = principal.customer_id if not principal.is_staff else \
                self._owner(session, object_type, object_id, answer)
            job_id = _job(answer)
            vps_id = object_id if object_type == "vps" else None
            if vps_id is None and job_id is not None:
                job = session.get(Job, job_id)
                vps_id = job.vps_id if job is not None else None
            session.add(Audit(
                actor=str(principal)[:100], action=action[:64], detail=f"{scope['method']} {scope['path']}"[:500],
                customer_id=customer_id, object_type=object_type, object_id=object_id, job_id=job_id,
                vps_id=vps_id, address=(str(client[0])[:64] if client else None), result=status))
            session.commit()

    @staticmethod
    def _owner(session: Session, object_type: str | None, object_id: str | None, answer: Any) -> int | None:
        """The customer staff acted on behalf of, when the object says."""
        if object_type == "vps" and object_id:
            vps = session.get(Vps, object_id)
            if vps is not None:
                return vps.customer_id
        if object_type == "customer" and object_id:
            if object_id.isdigit():  # a row id; a number past 64 bits (a refused request's) names none
                return int(object_id) if int(object_id) < 2**63 else None
            return session.exec(select(col(Customer.id)).where(Customer.name == object_id)).first()
        if isinstance(answer, dict) and isinstance(answer.get("customer_id"), int):
            return int(answer["customer_id"])
        return None
