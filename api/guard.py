"""What every HTTP request passes before the application reads it (an ASGI middleware):

1. **Authentication first.** Every path but the health check and the documentation needs a valid
   bearer token (known, not revoked, not expired: ``core.auth.authenticate``); without one the
   answer is ``401`` at once, saying which, before a byte of the body is read
   (a large or malformed body from an anonymous client costs nothing).  The principal is handed
   to the application (``request.state.principal``, read by ``api.deps.get_principal``).
2. **Bounded bodies.** A body larger than ``VPSCTL_API_MAX_BODY_BYTES`` (announced, or streamed
   beyond it) is refused with ``413``.
3. **Rate limits.** Each token may make ``VPSCTL_API_RATE_PER_MINUTE`` requests in any moving
   minute (the `limits` library's moving window; a customer's tokens count apiece); past it the
   answer is ``429`` with ``Retry-After`` (seconds), before the body is read.
4. **Idempotency.** A ``POST`` with an ``Idempotency-Key`` header is answered once per account
   (``Principal.account``: a customer, or one staff token) and key: the same key with the same
   request (method, path, query, body) gets the first answer again (``Idempotent-Replayed:
   true``), with another request ``422``, and while the first is still being answered ``409``.
   Answers of 500 and above are not kept (the request may be tried again with the same key); an
   answer marked ``Cache-Control: no-store`` (a secret shown once) is not kept either, its replay
   is a ``409`` saying so.

WebSockets pass through: the console route authenticates its own opening.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from orchestrator.core.auth import Principal, authenticate
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Unauthorized
from orchestrator.core.models import IdempotentRequest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
PROBLEM = "application/problem+json"
KEPT_BODY_BYTES = 1 << 20  # an answer kept for replays is at most this long


class TooLarge(Exception):
    pass


def problem_message(status: int, title: str, detail: str, instance: str | None = None,
                    **headers: str) -> tuple[Message, Message]:
    problem = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance is not None:
        problem["instance"] = instance
    body = json.dumps(problem).encode()
    raw = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return ({"type": "http.response.start", "status": status, "headers": raw},
            {"type": "http.response.body", "body": body})


async def answer(send: Send, status: int, title: str, detail: str, instance: str | None = None,
                 **headers: str) -> None:
    start, body = problem_message(status, title, detail, instance, **headers)
    await send(start)
    await send(body)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


@dataclass
class Captured:
    status: int = 0
    content_type: str = ""
    body: bytearray = field(default_factory=bytearray)
    no_store: bool = False  # ``Cache-Control: no-store``: the answer holds a secret shown once


class Guard:
    def __init__(self, app: ASGIApp, engine: Engine, max_body_bytes: int, rate_per_minute: int,
                 rate_storage: str = "memory://") -> None:
        self.app = app
        self.engine = engine
        self.max_body = max_body_bytes
        self.rate = RateLimitItemPerMinute(rate_per_minute)
        self.limiter = MovingWindowRateLimiter(storage_from_string(rate_storage))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        principal = await run_in_threadpool(self._principal, header(scope, b"authorization") or "")
        if not isinstance(principal, Principal):
            await answer(send, 401, "Unauthorized", principal, instance=scope["path"],
                         **{"WWW-Authenticate": "Bearer"})
            return
        scope.setdefault("state", {})["principal"] = principal
        wait = await run_in_threadpool(self._over_rate, principal)  # a shared storage is a network call
        if wait is not None:
            await answer(send, 429, "Too many requests",
                         f"at most {self.rate.amount} requests a minute per token; retry in {wait} s",
                         **{"Retry-After": str(wait)}, instance=scope["path"])
            return
        announced = header(scope, b"content-length")
        if announced is not None and announced.isdigit() and int(announced) > self.max_body:
            await answer(send, 413, "Request body too large", f"bodies are limited to {self.max_body} bytes",
                         instance=scope["path"])
            return
        key = header(scope, b"idempotency-key")
        try:
            if scope["method"] == "POST" and key:
                await self._idempotent(scope, receive, send, principal, key)
            else:
                await self.app(scope, self._bounded(receive), send)
        except TooLarge:
            await answer(send, 413, "Request body too large", f"bodies are limited to {self.max_body} bytes",
                         instance=scope["path"])

    def _over_rate(self, principal: Principal) -> int | None:
        """None while the token is within its rate; else the seconds until a request is let through."""
        key = f"token:{principal.token_id}" if principal.token_id is not None else principal.account
        if self.limiter.hit(self.rate, key):
            return None
        reset = self.limiter.get_window_stats(self.rate, key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def _principal(self, authorization: str) -> Principal | str:
        """The bearer token's principal, or why there is none (the 401's detail)."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "a valid bearer token is needed (Authorization: Bearer <token>)"
        with Session(self.engine) as session:
            try:
                return authenticate(session, token.strip())
            except Unauthorized as exc:
                return exc.detail

    def _bounded(self, receive: Receive) -> Receive:
        """``receive``, refusing a body streamed past the limit (TooLarge before the app sees it)."""
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise TooLarge
            return message

        return bounded

    async def _idempotent(self, scope: Scope, receive: Receive, send: Send, principal: Principal, key: str) -> None:
        if len(key) > 200:
            await answer(send, 422, "Invalid request", "Idempotency-Key: at most 200 characters",
                         instance=scope["path"])
            return
        body = bytearray()
        bounded = self._bounded(receive)
        while True:
            message = await bounded()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        digest = hashlib.sha256(b"\n".join([scope["method"].encode(), scope["path"].encode(),
                                             scope.get("query_string", b""), bytes(body)])).hexdigest()
        row_id, earlier = await run_in_threadpool(self._claim, principal.account, key, digest)
        if earlier is not None:
            if earlier.request_hash != digest:
                await answer(send, 422, "Invalid request",
                             "this Idempotency-Key was used for another request: use a new key",
                             instance=scope["path"])
            elif earlier.status is None:
                await answer(send, 409, "Conflict", "a request with this Idempotency-Key is still being answered",
                             instance=scope["path"])
            else:
                payload = earlier.body.encode()
                await send({"type": "http.response.start", "status": earlier.status, "headers": [
                    (b"content-type", earlier.content_type.encode()), (b"content-length", str(len(payload)).encode()),
                    (b"idempotent-replayed", b"true")]})
                await send({"type": "http.response.body", "body": payload})
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        captured = Captured()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        captured.content_type = value.decode("latin-1")
                    if name.lower() == b"cache-control" and b"no-store" in value.lower():
                        captured.no_store = True
            elif message["type"] == "http.response.body":
                captured.body += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            await run_in_threadpool(self._keep, row_id, captured)

    def _claim(self, account: str, key: str, digest: str) -> tuple[int | None, IdempotentRequest | None]:
        """Record the key as being answered (its id), or the earlier request under it."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = IdempotentRequest(account=account, key=key, request_hash=digest)
            session.add(row)
            try:
                session.commit()
                return row.id, None
            except IntegrityError:  # asked before, or at this very moment by another request
                session.rollback()
            earlier = session.exec(select(IdempotentRequest).where(
                IdempotentRequest.account == account, IdempotentRequest.key == key)).one()
            return None, earlier

    def _keep(self, row_id: int | None, captured: Captured) -> None:
        with Session(self.engine) as session:
            row = session.get(IdempotentRequest, row_id)
            if row is None:
                return
            if captured.status == 0 or captured.status >= 500 or len(captured.body) > KEPT_BODY_BYTES:
                session.delete(row)  # not answered, or not for good: the key may be used again
            elif captured.no_store and captured.status < 300:
                # A secret shown once (a webhook's) is never stored in clear: the key stays used, and
                # a replay is told so instead of getting the secret again.
                row.status, row.content_type, row.answered_at = 409, "application/problem+json", utcnow()
                row.body = json.dumps({"type": "about:blank", "title": "Conflict", "status": 409, "detail": (
                    "this Idempotency-Key was answered already with a secret shown once, which is not kept: "
                    "the first answer made the resource (list them to find it)")})
                session.add(row)
            else:
                row.status, row.content_type = captured.status, captured.content_type
                row.body, row.answered_at = captured.body.decode("utf-8", "replace"), utcnow()
                session.add(row)
            session.commit()
