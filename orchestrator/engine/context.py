"""What an operation's code may use: the ``Request`` its check reads, the ``Context`` its steps run in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from orchestrator.compute.designer import domain_config, ipv4_address, mac_of
from orchestrator.compute.hosts import Drivers, ensure_guest_filters
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.errors import OperationFailed
from orchestrator.core.models import Customer, Host, Job, Vps
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.hypervisor import HypervisorDriver

M = TypeVar("M", bound=BaseModel)
REQUESTED_ROLE = "requested_role"  # job parameter: the role of who asked (re-checks, hooks)
PLAN = "plan"  # job parameter: the plan ``check`` returned


@dataclass
class Request:
    """Everything an operation's ``check`` may read, at request time and again when the worker
    starts the job (``at_start``).  ``cause`` names the workflow record the job is asked for
    (``compromise:<id>``, ``payment_default:<id>``, ...; None when a person asked directly)."""

    session: Session
    settings: Settings
    principal: Principal
    vps: Vps | None
    cause: str | None = None
    at_start: bool = False


@dataclass
class Context:
    """What a step may use: the job, its VPS, the VPS's host and driver, settings."""

    engine: Engine
    settings: Settings
    drivers: Drivers
    job: Job
    worker_id: str
    check_lease: Callable[[], None]
    _host: Host | None = field(default=None, repr=False)

    @property
    def params(self) -> dict[str, Any]:
        """The job's raw parameters; read them typed with ``args``/``plan``."""
        return self.job.params

    def args(self, model: type[M]) -> M:
        """The job's parameters as the operation's model (keys the model does not know are the
        plan and what the job remembered)."""
        return model.model_validate({k: v for k, v in self.job.params.items() if k in model.model_fields})

    def plan(self, model: type[M]) -> M:
        """The plan ``check`` returned when the job started (or was asked)."""
        return model.model_validate(self.job.params.get(PLAN) or {})

    @property
    def planned(self) -> bool:
        """Whether the job has a plan (one refused before its check ran has none)."""
        return PLAN in self.job.params

    @property
    def requested_role(self) -> str | None:
        """The role of who asked for the job."""
        role = self.job.params.get(REQUESTED_ROLE)
        return str(role) if role else None

    def wait_deadline(self, step: str, timeout: float) -> datetime:
        """When the wait of ``step`` in this attempt must have ended: set (and kept in the job)
        the first time it is asked, read back when the job is taken up again after a yield."""
        waits = dict(self.job.params.get(jobs.WAITS) or {})
        current = waits.get(step)
        if current and current.get("attempt") == self.job.attempts:
            return datetime.fromisoformat(current["until"])
        until = utcnow() + timedelta(seconds=timeout)
        waits[step] = {"until": until.isoformat(), "attempt": self.job.attempts, "yields": 0}
        self.remember(**{jobs.WAITS: waits})
        return until

    def waiting_since_before(self, step: str) -> bool:
        """Whether this attempt already began to wait in ``step`` (and the step runs again after
        giving its slot back): what started the wait (a power button press) is not done twice."""
        current = (self.job.params.get(jobs.WAITS) or {}).get(step)
        return current is not None and current.get("attempt") == self.job.attempts

    def end_wait(self, step: str) -> None:
        waits = dict(self.job.params.get(jobs.WAITS) or {})
        if waits.pop(step, None) is not None:
            self.remember(**{jobs.WAITS: waits})

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction, committed when the block ends without error."""
        with session_scope(self.engine) as session:
            yield session

    def vps(self) -> Vps:
        with session_scope(self.engine) as session:
            vps = session.get(Vps, self.job.vps_id)
            if vps is None:
                raise OperationFailed(f"VPS {self.job.vps_id} is not recorded")
            session.expunge(vps)
            return vps

    def host(self) -> Host:
        # Read once: only a migration moves a VPS during a job, and it says so (forget_host).
        if self._host is None:
            vps = self.vps()
            with session_scope(self.engine) as session:
                host = session.get(Host, vps.host_id)
                if host is None:
                    raise OperationFailed(f"VPS {vps.id} has no host")
                session.expunge(host)
                self._host = host
        return self._host

    def forget_host(self) -> None:
        """The VPS moved (a migration switched it): read its host again."""
        self._host = None

    @property
    def guest_proxy_command(self) -> str:
        """How this VPS's guest is reached: its host's way, else the installation's."""
        own = self.host().guest_proxy_command if self.vps().host_id is not None else None
        return own if own is not None else self.settings.hosts.guest_proxy_command

    @property
    def driver(self) -> HypervisorDriver:
        return self.drivers.for_host(self.host())

    def update_vps(self, **changes: Any) -> Vps:
        with session_scope(self.engine) as session:
            vps = session.get(Vps, self.job.vps_id)
            if vps is None:
                raise OperationFailed(f"VPS {self.job.vps_id} is not recorded")
            for key, value in changes.items():
                setattr(vps, key, value)
            vps.updated_at = utcnow()
            session.add(vps)
            session.flush()
            session.expunge(vps)
            return vps

    def remember(self, **values: Any) -> None:
        """Keep something in the job itself: it survives a crash and the next attempt reads it."""
        with session_scope(self.engine) as session:
            job = session.get(Job, self.job.id)
            if job is None:
                raise OperationFailed(f"job {self.job.id} is not recorded")
            job.params = {**job.params, **values}
            session.add(job)
            self.job.params = dict(job.params)

    def define(self) -> str:
        """(Re)define the domain from the VPS record: the persistent definition always follows
        the record (sizes, link state, network filter), whatever happened to it on the host.

        The filters the interface references are checked first (a host registered by an earlier
        version lacks ours; one without libvirt's clean-traffic is refused), and a recorded
        address is pinned (a DHCP host entry): the interface's filter lets the guest use that
        address only, so the DHCP server must never hand it another."""
        vps, host = self.vps(), self.host()
        with session_scope(self.engine) as session:
            customer = session.get(Customer, vps.customer_id)
            customer_name = customer.name if customer else ""
        ensure_guest_filters(self.driver)
        address = ipv4_address(vps)
        if address:
            self.driver.pin_address(host.network_name, mac_of(vps), address)
        self.driver.define_domain(domain_config(vps, host, customer_name, self.settings))
        return f"defined {vps.domain_name} ({host.domain_type}, {vps.vcpus} vCPU, {vps.memory_mib} MiB)"
