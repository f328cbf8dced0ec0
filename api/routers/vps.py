from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, status
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.schemas import JobAccepted, VpsCreate, VpsJobOut, VpsOut
from api.views import job_out, vps_out
from orchestrator.access import owner_for_create, visible_vps
from orchestrator.errors import InvalidRequest
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations import create, delete

router = APIRouter(prefix="/v1/vps", tags=["vps"])

IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="Repeat a POST with the same key to get the same VPS and job back"),
]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=VpsJobOut)
def create_vps(
    body: VpsCreate, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> VpsJobOut:
    """Order a VPS.  Answers at once with the VPS (``building``) and its create job."""
    spec = create.CreateRequest(
        name=body.name, image=body.image, vcpus=body.vcpus, memory_mib=body.memory_mib,
        disk_gib=body.disk_gib, ssh_keys=tuple(body.ssh_keys),
        customer_id=owner_for_create(session, principal, body.customer), site=body.site,
    )
    vps, job = create.request(session, settings, principal, spec, idempotency_key)
    return VpsJobOut(vps=vps_out(session, vps), job=job_out(session, job))


@router.get("", response_model=list[VpsOut])
def list_vps(
    session: SessionDep, principal: CurrentPrincipal,
    include_deleted: Annotated[bool, Query(description="Also list deleted VPS")] = False,
) -> list[VpsOut]:
    """Your VPS (staff: everyone's)."""
    query = select(Vps).order_by(col(Vps.created_at))
    if not principal.is_staff:
        query = query.where(Vps.customer_id == principal.customer_id)
    if not include_deleted:
        query = query.where(Vps.status != VpsStatus.deleted)
    return [vps_out(session, v) for v in session.exec(query).all()]


@router.get("/{vps_id}", response_model=VpsOut)
def get_vps(vps_id: str, session: SessionDep, principal: CurrentPrincipal) -> VpsOut:
    return vps_out(session, visible_vps(session, principal, vps_id))


@router.delete("/{vps_id}", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def delete_vps(
    vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    confirm_data_loss: Annotated[
        bool, Query(description="Must be true: deleting discards the VPS's disks for good")
    ] = False,
) -> JobAccepted:
    """Delete a VPS: its domain is removed and its volumes discarded (or wiped)."""
    vps = visible_vps(session, principal, vps_id)
    if not confirm_data_loss:
        raise InvalidRequest("deleting a VPS destroys its disks; repeat with ?confirm_data_loss=true")
    job = delete.request(session, settings, principal, vps)
    return JobAccepted(job=job_out(session, job))
