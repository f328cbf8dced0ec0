"""The reconciler (R5.2-keep-running): every ``reconcile_seconds``, each worker process compares
every host's domains with the records.

- A VPS recorded as powered on (``running`` or ``cut_off``), with no job of it at work or due,
  whose domain is shut off, crashed or missing has drifted: the drift is recorded (Audit), an
  incident ``vps_down`` is opened by "reconciler" (its fix deadline runs, R5.4-fix-delay, and the
  client is emailed), and with ``reconcile_restart`` a ``recover`` job starts the domain again;
  the incident is resolved once the domain runs again.
- A host that does not answer is recorded ``unreachable`` (it takes no new VPS) and gets a
  ``host_down`` incident for each of its powered-on VPS, resolved once the host answers and the
  domain runs.  Answering again, it is ``enabled`` again, or ``disabled`` when it holds a copy of
  a VPS rebuilt elsewhere meanwhile (an evacuation, R5.2): staff look before it takes VPS again.
- A domain of a VPS recorded on another host (the copy a lost host brings back after its VPS
  was rebuilt elsewhere) is powered off if it runs, never started, its disks kept for staff: a
  VPS never runs on two hosts at once.  Not while a job of the VPS is at work: a live migration
  has it defined on both hosts until its record switches (libvirt runs it on one).  A domain
  of no VPS is reported (once) and never touched.
- Every ``filter_check_seconds`` (a task of its own: it reads each domain's definition, where a
  reconcile pass is one bulk call per host), a running domain whose interface filter is not the
  one the record gives (a domain defined before every interface went through libvirt's
  clean-traffic, or changed on the host by hand) gets a ``network-sync`` job that applies the
  record's, live and persistent; the drift is recorded (Audit).

Each pass counts what it compared and decided (``PASS_FACTS``: VPS running as recorded, found
down, left alone, incidents opened and resolved); the ticker records them with the pass
(orchestrator/engine/status.py), and ``GET /metrics`` shows the last pass's.

Each drift opens one incident, not one per pass: the open incident is looked for first, and a
partial unique index (one open reconciler incident per VPS and malfunction) makes a second worker
process that looked at the same moment fail its insert and give up.  The restart job carries an
idempotency key made from the incident, so it is asked once per incident, whatever the number
of processes.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from orchestrator.compute.designer import interface_config, mac_of
from orchestrator.compute.hosts import Drivers, capacity, set_host_state
from orchestrator.compute.placement import Resources
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.errors import VpsctlError
from orchestrator.core.models import Audit, Host, Incident, Job, Role, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import events, jobs
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import NoParams, request
from orchestrator.engine.ticker import periodic
from orchestrator.hypervisor import DomainInfo, DomainState, FilterRef, HypervisorDriver
from orchestrator.operations.network_sync import SyncNetworkVps
from orchestrator.operations.recover import RecoverVps
from orchestrator.workflows import incidents

log = logging.getLogger(__name__)

POWERED_ON = (VpsStatus.running, VpsStatus.cut_off)
DOWN = (DomainState.shutoff, DomainState.crashed)
VPS_DOWN = "vps_down"
HOST_DOWN = "host_down"
RECONCILER = Principal(Role.automation, None, incidents.RECONCILER)


@dataclass(frozen=True)
class HostRef:
    id: int
    name: str
    uri: str
    ssh_host_key: str | None


def busy(session: Session, vps_id: str) -> bool:
    """A job of the VPS is at work or due (a deadline job still waiting for its instant, or an
    incident's deadline job, does not count: neither touches the domain)."""
    now = utcnow()
    return session.exec(select(Job.id).where(
        Job.vps_id == vps_id, col(Job.status).in_(jobs.ACTIVE), Job.kind != incidents.DEADLINE_KIND,
        or_(col(Job.scheduled_at).is_(None), col(Job.scheduled_at) <= now))).first() is not None


# What a pass looked at and decided, counted (the pass's record, orchestrator/engine/status.py).
PASS_FACTS = (
    "hosts",  # hosts looked at
    "hosts_down",  # of which did not answer
    "vps",  # powered-on VPS compared with their domain
    "as_recorded",  # running as recorded: nothing to do
    "drifts",  # found down (a domain shut off, crashed or missing)
    "incidents_opened",  # drifts (or a host down) that opened an incident now; the others had theirs
    "busy",  # found down but left alone: a job of the VPS is at work or due (or its record changed meanwhile)
    "resolved",  # VPS whose reconciler incidents were resolved (running again)
)


@periodic("reconcile", lambda settings: settings.periodic.reconcile_seconds)
def reconcile(engine: Engine, settings: Settings, drivers: Drivers) -> dict[str, int]:
    """R5.2-keep-running: one pass over every host (a disabled one's VPS keep running too); what
    it looked at and decided, counted (``PASS_FACTS``)."""
    facts = Counter(dict.fromkeys(PASS_FACTS, 0))
    for host in _hosts(engine):
        facts["hosts"] += 1
        try:
            reconcile_host(engine, settings, drivers, host, facts)
        except Exception:
            log.exception("reconciling host %s failed", host.name)
    return dict(facts)


@periodic("capacity", lambda settings: settings.periodic.capacity_seconds)
def refresh_capacity(engine: Engine, settings: Settings, drivers: Drivers) -> None:
    """Each host's capacity kept current (memory or disks added, a pool grown); a change is audited."""
    for host in _hosts(engine):
        try:
            now = capacity(settings, drivers.for_host(host))
        except VpsctlError as exc:
            log.info("capacity of host %s not read: %s", host.name, exc)
            continue
        with session_scope(engine) as session:
            record = session.get(Host, host.id)
            if record is None:
                continue
            before = Resources(record.vcpus, record.memory_mib, record.disk_gib)
            if before != now:
                record.vcpus, record.memory_mib, record.disk_gib = now.vcpus, now.memory_mib, now.disk_gib
                record.updated_at = utcnow()
                session.add(record)
                shown = [f"{r.vcpus} CPU {r.memory_mib} MiB {r.disk_gib} GiB" for r in (before, now)]
                session.add(Audit(actor=incidents.RECONCILER, action="host.capacity",
                                  detail=f"{host.name}: {shown[0]} -> {shown[1]}"))


def _hosts(engine: Engine) -> list[HostRef]:
    with session_scope(engine) as session:
        return [HostRef(h.id, h.name, h.uri, h.ssh_host_key) for h in session.exec(select(Host)) if h.id is not None]


def _powered_on(engine: Engine, host_id: int) -> tuple[list[str], set[str]]:
    """The host's powered-on VPS, and those of them with an open reconciler incident (one
    transaction per pass, not one per VPS)."""
    with session_scope(engine) as session:
        ids = list(session.exec(select(Vps.id).where(Vps.host_id == host_id, col(Vps.status).in_(POWERED_ON))).all())
        flagged = set(session.exec(select(Incident.vps_id).where(
            col(Incident.vps_id).in_(ids), Incident.opened_by == incidents.RECONCILER,
            col(Incident.resolved_at).is_(None))).all()) if ids else set()
        return ids, flagged


def reconcile_host(engine: Engine, settings: Settings, drivers: Drivers, host: HostRef,
                   facts: Counter[str] | None = None) -> None:
    """One bulk call to the host (every domain and its state), then the records; what it looked
    at and decided is added to ``facts``."""
    facts = Counter() if facts is None else facts
    try:
        domains = {d.uuid.lower(): d for d in drivers.for_host(host).list_domains()}
    except VpsctlError as exc:
        facts["hosts_down"] += 1
        _host_state(engine, host, answering=False, detail=str(exc))
        ids, flagged = _powered_on(engine, host.id)
        for vps_id in ids:
            facts["vps"] += 1
            if vps_id not in flagged:
                _count(facts, _open_once(engine, settings, vps_id, HOST_DOWN,
                                         f"host {host.name} does not answer: {exc}", restart=False), drift=False)
        return
    stale = _strays(engine, drivers, host, domains)
    _host_state(engine, host, answering=True, detail="holds a copy of a VPS rebuilt elsewhere" if stale else "")
    ids, flagged = _powered_on(engine, host.id)
    for vps_id in ids:
        facts["vps"] += 1
        info = domains.get(vps_id.lower())
        if info is not None and info.state == DomainState.running:
            facts["as_recorded"] += 1
            if vps_id in flagged:
                facts["resolved"] += _resolve_if_running(engine, settings, vps_id, info)
        elif info is None or info.state in DOWN:
            found = "missing" if info is None else info.state.value
            _count(facts, _open_once(engine, settings, vps_id, VPS_DOWN, f"the domain is {found} on host {host.name}",
                                     restart=settings.periodic.reconcile_restart), drift=True)
        elif vps_id in flagged:
            # Paused, or another state a job may be passing through: the host still answers; only
            # the host being back is worth recording.
            facts["resolved"] += _resolve_if_running(engine, settings, vps_id, info, malfunctions=(HOST_DOWN,))


def _count(facts: Counter[str], outcome: str, drift: bool) -> None:
    """A VPS found down (``drift``) or on a host down, and what ``_open_once`` did about it."""
    if outcome == "busy":
        facts["busy"] += 1
        return
    facts["drifts"] += drift
    facts["incidents_opened"] += outcome == "incidents_opened"


@periodic("filters", lambda settings: settings.periodic.filter_check_seconds)
def check_filters(engine: Engine, settings: Settings, drivers: Drivers) -> None:
    """Each running VPS's interface filter against its record's, host by host (those that answer)."""
    for host in _hosts(engine):
        try:
            driver = drivers.for_host(host)
            domains = {d.uuid.lower(): d for d in driver.list_domains()}
        except VpsctlError as exc:
            log.info("filters of host %s not checked: %s", host.name, exc)
            continue
        ids, _flagged = _powered_on(engine, host.id)
        running = [i for i in ids if (info := domains.get(i.lower())) is not None and info.state == DomainState.running]
        _sync_filters(engine, settings, driver, host, running)


def _host_state(engine: Engine, host: HostRef, answering: bool, detail: str) -> None:
    """``enabled`` <-> ``unreachable`` as the host answers or not; back from unreachable holding a
    stale copy (``detail``), ``disabled``.  A draining or disabled host keeps its state."""
    with session_scope(engine) as session:
        record = session.get(Host, host.id)
        if record is None:
            return
        if not answering and record.state == "enabled":
            set_host_state(session, record, "unreachable", incidents.RECONCILER)
            log.warning("host %s does not answer: %s", host.name, detail)
        elif answering and record.state == "unreachable":
            set_host_state(session, record, "disabled" if detail else "enabled", incidents.RECONCILER)
            log.warning("host %s answers again%s", host.name, f" and {detail}: disabled" if detail else "")


def _strays(engine: Engine, drivers: Drivers, host: HostRef, domains: dict[str, DomainInfo]) -> list[str]:
    """Domains on the host that are not its VPS: a copy of a VPS recorded elsewhere is powered
    off if it runs (never started); a domain of no VPS is reported once.  The stale copies' ids."""
    with session_scope(engine) as session:
        owners = {vps_id.lower(): host_id for vps_id, host_id in session.exec(
            select(Vps.id, Vps.host_id).where(col(Vps.id).in_([u for u in domains] + [u.upper() for u in domains])))}
        reported = set(session.exec(select(Audit.detail).where(Audit.action == "unknown-domain")).all())
    stale = []
    for uuid, info in domains.items():
        if uuid not in owners:
            note = f"{host.name}: {info.name} ({uuid})"
            if note not in reported:
                with session_scope(engine) as session:
                    session.add(Audit(actor=incidents.RECONCILER, action="unknown-domain", detail=note[:500]))
                log.warning("host %s holds domain %s (%s) of no VPS: left alone", host.name, info.name, uuid)
            continue
        if owners[uuid] == host.id:
            continue
        with session_scope(engine) as session:
            moving = busy(session, uuid)
        if moving:
            continue  # a migration under way has it on both hosts until its record switches
        stale.append(uuid)
        if info.state in DOWN:
            continue
        drivers.for_host(host).destroy_domain(uuid)
        with session_scope(engine) as session:
            session.add(Audit(vps_id=uuid, actor=incidents.RECONCILER, action="fenced",
                              detail=f"a copy of the VPS ran on {host.name}, which it is not recorded on: "
                                     "powered off, its disks kept"[:500]))
        log.warning("VPS %s: a copy ran on host %s, where it is not recorded: powered off", uuid, host.name)
    return stale


def _sync_filters(engine: Engine, settings: Settings, driver: HypervisorDriver, host: HostRef,
                  vps_ids: list[str]) -> None:
    """Each running domain's interface filter against the record's; a network-sync job for those
    that differ (libvirt's clean-traffic on every interface, the mail block, the address)."""
    if not vps_ids:
        return
    with session_scope(engine) as session:
        record = session.get(Host, host.id)
        if record is None:
            return
        wanted = {vps.id: (mac_of(vps), interface_config(vps, record, settings).filter)
                  for vps in session.exec(select(Vps).where(col(Vps.id).in_(vps_ids))).all()}
    for vps_id, (mac, expected) in wanted.items():
        try:
            found = driver.live_filter(vps_id, mac)
            # No filter read from a domain that stopped meanwhile is no drift (its next start
            # defines it from the record): look at its state after the read.
            info = driver.domain(vps_id) if found != expected else None
        except VpsctlError as exc:
            log.warning("VPS %s: cannot read its interface filter: %s", vps_id, exc)
            continue
        if info is not None and info.state == DomainState.running:
            _ask_sync(engine, settings, vps_id, found, expected)


def _ask_sync(engine: Engine, settings: Settings, vps_id: str, found: FilterRef | None,
              expected: FilterRef | None) -> None:
    """Record the drift and ask the network-sync job, unless a job of the VPS is at work or due
    (it may be changing the interface right now; the next pass looks again)."""
    with session_scope(engine) as session:
        vps = session.get(Vps, vps_id)
        if vps is None or vps.status not in POWERED_ON or busy(session, vps_id):
            return
        session.add(Audit(vps_id=vps_id, actor=incidents.RECONCILER, action="drift",
                          detail=f"interface filter {_show(found)}, the record says {_show(expected)}"[:500]))
        request(Request(session, settings, RECONCILER, vps), SyncNetworkVps, NoParams())
        log.warning("VPS %s: interface filter %s, not %s; network-sync asked", vps_id, _show(found), _show(expected))


def _show(ref: FilterRef | None) -> str:
    if ref is None:
        return "none"
    return ref.filter + "".join(f" {name}={value}" for name, value in sorted(ref.parameters))


def _open_once(engine: Engine, settings: Settings, vps_id: str, malfunction: str, found: str,
               restart: bool) -> str:
    """Record the drift and open the reconciler's incident unless it is open already; ask for the
    restart once per incident.  A concurrent pass that won the race makes this one's insert fail:
    nothing is recorded twice.  What it did: ``incidents_opened``, ``open_already`` (this pass or
    another process found it before), ``busy`` (a job of the VPS at work: left alone)."""
    opened = "open_already"
    try:
        with session_scope(engine) as session:
            vps = session.get(Vps, vps_id)
            if vps is None or vps.status not in POWERED_ON or busy(session, vps_id):
                return "busy"
            incident = incidents.open_automatic(session, vps_id, malfunction)
            if incident is None:
                opened = "incidents_opened"
                session.add(Audit(vps_id=vps_id, actor=incidents.RECONCILER, action="drift",
                                  detail=f"recorded {vps.status.value}, but {found}"[:500]))
                incident = incidents.open_incident(
                    session, settings, vps, malfunction, f"Found by the reconciler: {found}.",
                    incidents.RECONCILER)
                log.warning("VPS %s: %s; incident %s opened", vps_id, found, incident.id)
            if restart:
                request(Request(session, settings, RECONCILER, vps, cause=incidents.cause(incident)), RecoverVps,
                        NoParams(), idempotency_key=f"recover:{incident.id}")
    except IntegrityError:
        log.info("VPS %s: another process recorded the same drift", vps_id)
        return "open_already"
    return opened


def _resolve_if_running(engine: Engine, settings: Settings, vps_id: str, info: DomainInfo,
                        malfunctions: tuple[str, ...] = (VPS_DOWN, HOST_DOWN)) -> int:
    """R5.4-fix-delay: the domain runs again (restarted, or by someone else): the reconciler's
    incidents of that VPS are resolved.  1 when it resolved any, else 0."""
    with session_scope(engine) as session:
        open_ones = session.exec(select(Incident).where(
            Incident.vps_id == vps_id, Incident.opened_by == incidents.RECONCILER,
            col(Incident.resolved_at).is_(None), col(Incident.malfunction).in_(malfunctions))).all()
        if not open_ones or busy(session, vps_id):
            return 0
        for incident in open_ones:
            incidents.resolve(session, settings, incident, f"the domain is {info.state.value} again",
                              incidents.RECONCILER)
        return 1


@events.on_succeeded(RecoverVps.kind)
def _recovered(ctx: Context) -> None:
    """R5.2-keep-running, R5.4-fix-delay: running again is the solution of the incident."""
    with ctx.transaction() as session:
        incident_id = jobs.cause_id(ctx.job, incidents.CAUSE)
        incident = session.get(Incident, incident_id) if incident_id else None
        if incident is not None and incident.resolved_at is None and incident.opened_by == incidents.RECONCILER:
            incidents.resolve(session, ctx.settings, incident,
                              f"domain started again by the reconciler (job {ctx.job.id})", incidents.RECONCILER)
