"""Scheduling maintenance (R5.4): check the window against the contract, record it, and tell
every affected customer by email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from orchestrator.contract.calendar import to_utc
from orchestrator.contract.maintenance import (
    check_window,
    least_harmful_hour_from_traffic,
    least_harmful_hours,
    next_start_at_hour_of_week,
)
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import ContractRefusal, InvalidRequest, NotFound
from orchestrator.core.models import Host, Maintenance, MaintenanceVps, Outbox, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.notify import enqueue
from orchestrator.workflows.traffic import weekly_profile

GONE = (VpsStatus.deleted, VpsStatus.deleting)


@dataclass(frozen=True)
class MaintenanceRequest:
    starts_at: datetime
    duration_minutes: int
    reason: str
    host_id: int | None = None
    vps_ids: tuple[str, ...] = ()


def affected(session: Session, spec: MaintenanceRequest) -> list[Vps]:
    if (spec.host_id is None) == (not spec.vps_ids):
        raise InvalidRequest("give either host_id or vps_ids")
    if spec.host_id is not None:
        if session.get(Host, spec.host_id) is None:
            raise NotFound(f"no host {spec.host_id}")
        return list(session.exec(select(Vps).where(Vps.host_id == spec.host_id,
                                                   col(Vps.status).not_in(GONE))).all())
    found = list(session.exec(select(Vps).where(col(Vps.id).in_(spec.vps_ids), col(Vps.status).not_in(GONE))).all())
    missing = set(spec.vps_ids) - {v.id for v in found}
    if missing:
        raise NotFound(f"no VPS {sorted(missing)[0]!r}")
    return found


def _record(session: Session, settings: Settings, principal: Principal, spec: MaintenanceRequest, kind: str,
            vps_list: list[Vps]) -> Maintenance:
    """Record the window and queue one notice per affected VPS, in its customer's language."""
    record = Maintenance(kind=kind, host_id=spec.host_id, starts_at=spec.starts_at,
                         duration_minutes=spec.duration_minutes, reason=spec.reason, created_by=str(principal))
    session.add(record)
    session.flush()
    ends_at = spec.starts_at + timedelta(minutes=spec.duration_minutes)
    for vps in vps_list:
        session.add(MaintenanceVps(maintenance_id=record.id, vps_id=vps.id, starts_at=spec.starts_at))
        if kind == "maintenance":
            template, context = "maintenance_notice", {"duration_minutes": spec.duration_minutes,
                                                       "description": spec.reason}
        else:
            template, context = "interruption_notice", {"ends_at": ends_at, "reason": spec.reason}
        notice = enqueue(session, vps.customer_id, template,
                         {"vps_name": vps.name, "vps_id": vps.id, "starts_at": spec.starts_at, **context},
                         vps_id=vps.id, settings=settings)
        if notice.id is not None:
            record.notice_ids = [*record.notice_ids, notice.id]
    session.add(record)
    return record


def _check_start(spec: MaintenanceRequest, refusal: Exception) -> None:
    if spec.starts_at.tzinfo is None:
        raise InvalidRequest("starts_at needs a UTC offset")
    if spec.starts_at <= utcnow():
        raise refusal


def schedule(session: Session, settings: Settings, principal: Principal, spec: MaintenanceRequest) -> Maintenance:
    """R5.4-duration, R5.4-frequency: refused (naming the rule) or recorded with its notices queued."""
    _check_start(spec, InvalidRequest("starts_at must be in the future"))
    vps_list = affected(session, spec)
    others = session.exec(
        select(MaintenanceVps.starts_at)
        .join(Maintenance, col(Maintenance.id) == col(MaintenanceVps.maintenance_id))
        .where(col(MaintenanceVps.vps_id).in_([v.id for v in vps_list]), Maintenance.kind == "maintenance")
    ).all()
    check_window(spec.starts_at, spec.duration_minutes, [t for t in others if t is not None])
    return _record(session, settings, principal, spec, "maintenance", vps_list)


MAX_INTERRUPTION_MINUTES = 7 * 24 * 60


def announce_interruption(session: Session, settings: Settings, principal: Principal,
                          spec: MaintenanceRequest) -> Maintenance:
    """R5.4-notice: an interruption that is not normal maintenance (a hardware replacement, a move
    to another host, ...) is announced to every affected client by email beforehand: it is
    recorded only for a start in the future, and its notices are queued at once.  Staff check
    ``notices_sent`` before starting the work (the outbox retries while SMTP is down)."""
    _check_start(spec, ContractRefusal("R5.4-notice", "an interruption is announced to the client beforehand: "
                                                      "starts_at must be in the future"))
    if not 1 <= spec.duration_minutes <= MAX_INTERRUPTION_MINUTES:
        raise InvalidRequest(f"duration_minutes must be between 1 and {MAX_INTERRUPTION_MINUTES}")
    return _record(session, settings, principal, spec, "interruption", affected(session, spec))


def of_kind(session: Session, kind: str) -> list[Maintenance]:
    """Every recorded maintenance (or interruption), earliest first."""
    return list(session.exec(select(Maintenance).where(Maintenance.kind == kind)
                             .order_by(col(Maintenance.starts_at))).all())


def notices(session: Session, record: Maintenance) -> list[Outbox]:
    """The notices of a maintenance or interruption, to see whether they have left."""
    if not record.notice_ids:
        return []
    return list(session.exec(select(Outbox).where(col(Outbox.id).in_(record.notice_ids))).all())


def suggested_hours(day: datetime) -> list[int]:
    """R5.4-hours: the UTC hours of that day least harmful to Europe and the Americas, best first."""
    return [score.hour_utc for score in least_harmful_hours(day=day.date())][:5]


@dataclass(frozen=True)
class Suggestion:
    """R5.4-hours: when to hold a maintenance, and on what basis."""

    basis: str  # "traffic" (measured on the VPS concerned) or "time_zones" (the default)
    hours_utc: list[int]  # that day's least harmful UTC hours, best first
    hour_of_week: int | None = None  # traffic: the week's hour with the least measured traffic
    next_start: datetime | None = None  # its next occurrence


def suggestion(session: Session, vps_ids: list[str], day: datetime, after: datetime | None = None) -> Suggestion:
    """R5.4-hours: the better reading when traffic was measured on the VPS concerned (summed per
    hour of the week over them: the host's VPS for a host maintenance): that day's measured hours
    ranked by traffic, and the week's quietest hour; otherwise the time-zone default."""
    profile = weekly_profile(session, vps_ids)
    if not profile:
        return Suggestion("time_zones", suggested_hours(day))
    best = least_harmful_hour_from_traffic(profile)
    next_start = next_start_at_hour_of_week(best, after or utcnow())
    that_day = {h: v for h, v in profile.items() if h // 24 == to_utc(day).weekday()}
    ranked: list[int] = []
    while that_day and len(ranked) < 5:
        hour = least_harmful_hour_from_traffic(that_day)
        ranked.append(hour % 24)
        del that_day[hour]
    if not ranked:
        return Suggestion("time_zones", suggested_hours(day), best, next_start)
    return Suggestion("traffic", ranked, best, next_start)
