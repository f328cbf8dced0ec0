"""``GET /v1/vps/{id}/console``: the guest's serial console as a WebSocket (owner and staff).

The one place where the API process talks to a hypervisor itself: a console is a live pipe to
the guest, not a change of state, so there is no job to queue.  Opening it is audited."""

from __future__ import annotations

import contextlib

import anyio
import anyio.abc
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from orchestrator.access import visible_vps
from orchestrator.auth import authenticate
from orchestrator.errors import VpsctlError
from orchestrator.hosts import Drivers
from orchestrator.hypervisor import ConsoleStream
from orchestrator.models import Audit, Host, VpsStatus

router = APIRouter(tags=["console"])
POWERED = (VpsStatus.running, VpsStatus.cut_off, VpsStatus.suspended)


@router.websocket("/v1/vps/{vps_id}/console")
async def console(websocket: WebSocket, vps_id: str) -> None:
    """Bytes from the guest's serial port arrive as binary messages; send text or binary to type."""
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    with Session(websocket.app.state.engine, expire_on_commit=False) as session:
        try:
            if scheme.lower() != "bearer" or not token:
                raise VpsctlError("missing bearer token")
            principal = authenticate(session, token.strip())
            vps = visible_vps(session, principal, vps_id)
        except VpsctlError:
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
            return
        host = session.get(Host, vps.host_id) if vps.host_id else None
        if host is None or vps.status not in POWERED:
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=f"VPS is {vps.status.value}")
            return
        session.add(Audit(vps_id=vps.id, actor=str(principal), action="console", detail="serial console opened"))
        session.commit()
    drivers: Drivers = websocket.app.state.drivers
    try:
        stream = await run_in_threadpool(drivers.for_uri(host.uri).open_console, vps.id)
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
        with contextlib.suppress(RuntimeError):
            await websocket.close()
