"""``GET /v1/vps/{id}/console``: the guest's serial console as a WebSocket (owner and staff).

The one place where the API process talks to a hypervisor itself: a console is a live pipe to
the guest, not a change of state, so there is no job to queue.  Opening it is audited.  The
token is read by the ``websocket_principal`` dependency (an automation token needs ``vps:write``:
typing into a guest is acting on it, api/scopes.py); the database and the hypervisor are
reached from a worker thread, never from the event loop."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated

import anyio
import anyio.abc
from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect, status
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import websocket_principal
from orchestrator.compute.hosts import Drivers, HostAt
from orchestrator.core.access import visible_vps
from orchestrator.core.auth import Principal, require_scope
from orchestrator.core.errors import VpsctlError
from orchestrator.core.models import Audit, Host, VpsStatus
from orchestrator.hypervisor import ConsoleStream

router = APIRouter(tags=["console"])
POWERED = (VpsStatus.running, VpsStatus.cut_off, VpsStatus.suspended)


@dataclass(frozen=True)
class Opening:
    vps_id: str
    host: HostAt | None
    refusal: str | None = None


def _open(engine: Engine, principal: Principal, vps_id: str) -> Opening:
    """The VPS and its host if the principal may open its console now; the opening is audited."""
    require_scope(principal, "vps:write")
    with Session(engine, expire_on_commit=False) as session:
        vps = visible_vps(session, principal, vps_id)
        host = session.get(Host, vps.host_id) if vps.host_id else None
        if host is None or vps.status not in POWERED:
            return Opening(vps.id, None, f"VPS is {vps.status.value}")
        session.add(Audit(vps_id=vps.id, actor=str(principal), action="console", detail="serial console opened"))
        session.commit()
        return Opening(vps.id, HostAt(host.uri, host.ssh_host_key))


@router.websocket("/v1/vps/{vps_id}/console")
async def console(websocket: WebSocket, vps_id: str,
                  principal: Annotated[Principal | None, Depends(websocket_principal)]) -> None:
    """Bytes from the guest's serial port arrive as binary messages; send text or binary to type."""
    if principal is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    try:
        opening = await run_in_threadpool(_open, websocket.app.state.engine, principal, vps_id)
    except VpsctlError:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    if opening.host is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=opening.refusal or "")
        return
    drivers: Drivers = websocket.app.state.drivers
    host = opening.host
    try:
        stream = await run_in_threadpool(lambda: drivers.for_host(host).open_console(opening.vps_id))
    except VpsctlError as exc:
        await websocket.close(code=status.WS_1011_INTERNAL_ERROR, reason=exc.detail[:120])
        return
    await websocket.accept()
    await _pipe(websocket, stream)


async def _pipe(websocket: WebSocket, stream: ConsoleStream) -> None:
    """Both directions until either side closes.  A task group (not bare asyncio tasks) so that a
    cancellation from the server reaches both; the blocked console read is abandoned on cancel
    and unblocked by closing the stream."""

    async def guest_to_client(group: anyio.abc.TaskGroup) -> None:
        while data := await anyio.to_thread.run_sync(stream.read, abandon_on_cancel=True):
            await websocket.send_bytes(data)
        group.cancel_scope.cancel()

    async def client_to_guest(group: anyio.abc.TaskGroup) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                payload = message.get("bytes") or (message.get("text") or "").encode()
                if payload:
                    await anyio.to_thread.run_sync(stream.write, payload)
        group.cancel_scope.cancel()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(guest_to_client, group)
            group.start_soon(client_to_guest, group)
    finally:
        stream.close()
        # closed already: RuntimeError from Starlette, WebSocketDisconnect from a served socket the client closed
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close()
