"""Measured traffic (R5.4-hours: "better: the hour of the week with the least measured traffic on
the VPS or host concerned").

Every ``traffic_seconds`` (an hour by default) each worker process reads the network counters of
every powered-on VPS (bytes through its interfaces, from the hypervisor) and adds the difference
with the previous reading to the VPS's TrafficSample of the UTC hour the interval mostly lies in
(the hour of its middle).  Counters start again from zero when a domain is started again: a
reading smaller than the previous one is counted from zero.  The first reading of a VPS is only
remembered (no interval yet).

Several worker processes may read at the same time: the previous reading is replaced only if it
is still the one the delta was computed from (a conditional update), so an interval is counted
once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from orchestrator.compute.hosts import Drivers, HostAt
from orchestrator.contract.maintenance import hour_of_week
from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.errors import VpsctlError
from orchestrator.core.models import Host, TrafficCounter, TrafficSample, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine.ticker import periodic

log = logging.getLogger(__name__)

POWERED_ON = (VpsStatus.running, VpsStatus.cut_off)


def hour_of(start: datetime, end: datetime) -> datetime:
    """The UTC hour (its start) holding the middle of [start, end]."""
    middle = start + (end - start) / 2
    return middle.replace(minute=0, second=0, microsecond=0)


def delta(previous: tuple[int, int], reading: tuple[int, int]) -> tuple[int, int]:
    """Bytes (rx, tx) between two readings; a smaller reading means the counters started again
    from zero (the domain was started again), so the reading itself is the delta."""
    if reading[0] < previous[0] or reading[1] < previous[1]:
        return reading
    return reading[0] - previous[0], reading[1] - previous[1]


def record_reading(engine: Engine, vps_id: str, previous: TrafficCounter | None, reading: tuple[int, int],
                   now: datetime) -> tuple[int, int] | None:
    """Store ``reading`` as the VPS's last one and add the interval's bytes to its hourly sample;
    the delta counted, or None (first reading, or another process counted this interval)."""
    try:
        with session_scope(engine) as session:
            if previous is None or previous.read_at is None:
                if previous is None:
                    session.add(TrafficCounter(vps_id=vps_id, rx_bytes=reading[0], tx_bytes=reading[1], read_at=now))
                else:
                    session.exec(update(TrafficCounter).where(col(TrafficCounter.vps_id) == vps_id)
                                 .values(rx_bytes=reading[0], tx_bytes=reading[1], read_at=now))
                return None
            replaced = session.exec(
                update(TrafficCounter)
                .where(col(TrafficCounter.vps_id) == vps_id, col(TrafficCounter.read_at) == previous.read_at)
                .values(rx_bytes=reading[0], tx_bytes=reading[1], read_at=now))
            if replaced.rowcount != 1:
                return None
            rx, tx = delta((previous.rx_bytes, previous.tx_bytes), reading)
            hour = hour_of(previous.read_at, now)
            sample = session.get(TrafficSample, (vps_id, hour)) or TrafficSample(vps_id=vps_id, hour=hour)
            sample.rx_bytes += rx
            sample.tx_bytes += tx
            session.add(sample)
            return rx, tx
    except IntegrityError:  # another process stored the first reading at the same moment
        return None


def collect_vps(engine: Engine, drivers: Drivers, host: HostAt, vps_id: str) -> tuple[int, int] | None:
    with Session(engine, expire_on_commit=False) as session:
        previous = session.get(TrafficCounter, vps_id)
        if previous is not None:
            session.expunge(previous)
    reading = drivers.for_host(host).interface_counters(vps_id)  # after the previous one was read
    if reading is None:
        return None
    return record_reading(engine, vps_id, previous, reading, utcnow())


@periodic("traffic", lambda settings: settings.periodic.traffic_seconds)
def collect(engine: Engine, settings: Settings, drivers: Drivers) -> None:
    """R5.4-hours: one reading of every powered-on VPS of every host that answers."""
    with session_scope(engine) as session:
        rows = session.exec(select(Vps.id, Host.uri, Host.ssh_host_key).join(Host, col(Host.id) == col(Vps.host_id))
                            .where(col(Vps.status).in_(POWERED_ON), Host.state != "disabled")).all()
    unreachable: set[str] = set()
    for vps_id, uri, key in rows:
        if uri in unreachable:
            continue
        try:
            collect_vps(engine, drivers, HostAt(uri, key), vps_id)
        except VpsctlError as exc:
            log.warning("traffic of VPS %s not read: %s", vps_id, exc)
            unreachable.add(uri)


def weekly_profile(session: Session, vps_ids: Iterable[str]) -> dict[int, int]:
    """R5.4-hours: measured bytes (both directions) per hour of the week (0 = Monday 00:00 UTC),
    summed over the VPS given and every week measured; only hours with a sample appear."""
    ids = list(vps_ids)
    profile: dict[int, int] = defaultdict(int)
    if not ids:
        return {}
    for sample in session.exec(select(TrafficSample).where(col(TrafficSample.vps_id).in_(ids))).all():
        if sample.hour is not None:
            profile[hour_of_week(sample.hour)] += sample.rx_bytes + sample.tx_bytes
    return dict(profile)
