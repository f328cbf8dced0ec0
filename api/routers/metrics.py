"""``GET /metrics``: the orchestrator's state in the Prometheus text format (staff tokens, or an
automation token with ``metrics:read``: Prometheus sends it as ``authorization: credentials``).

Everything is read from the database at scrape time (a custom collector of `prometheus_client`),
so the figures are those of every API and worker process together, not of the one process that
happens to answer, and a restart loses nothing.  Counters come from rows that are never deleted
(finished jobs, the append-only audit log), so they only grow.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.deps import EngineDep, StaffPrincipal
from api.scopes import scoped
from orchestrator.compute.hosts import allocations
from orchestrator.core.clock import utcnow
from orchestrator.core.models import (
    Audit,
    Host,
    Job,
    JobStatus,
    Outbox,
    PeriodicRun,
    Webhook,
    WebhookDelivery,
    WorkerStatus,
)

router = APIRouter(tags=["metrics"], dependencies=[scoped("metrics")])

# Job durations (seconds): a tiny guest's create is seconds, a migration or an export minutes.
BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
FINISHED = (JobStatus.succeeded, JobStatus.failed)


def seconds(since: datetime | None, until: datetime | None) -> float | None:
    if since is None or until is None:
        return None
    return max(0.0, (until - since).total_seconds())


class StateCollector:
    """The collector read at each scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        with Session(self.engine) as session:
            yield from self._jobs(session)
            yield from self._queue(session)
            yield from self._outbox(session)
            yield from self._hosts(session)
            yield from self._audit(session)
            yield from self._webhooks(session)
            yield from self._duties(session)
            yield from self._workers(session)

    def _jobs(self, session: Session) -> Iterator[Metric]:
        count = GaugeMetricFamily("vpsctl_jobs", "Jobs by kind and status", labels=["kind", "status"])
        for kind, status, n in session.exec(select(Job.kind, Job.status, func.count())
                                            .group_by(col(Job.kind), col(Job.status))).all():
            count.add_metric([kind, str(status.value if isinstance(status, JobStatus) else status)], n)
        yield count
        durations: dict[str, list[float]] = {}
        for kind, started, finished in session.exec(select(Job.kind, Job.started_at, Job.finished_at)
                                                    .where(col(Job.status).in_(FINISHED))).all():
            took = seconds(started, finished)
            if took is not None:
                durations.setdefault(kind, []).append(took)
        histogram = HistogramMetricFamily("vpsctl_job_duration_seconds",
                                          "Time from a finished job's start to its end, by kind", labels=["kind"])
        for kind, values in sorted(durations.items()):
            cumulative = [(str(bound), float(sum(v <= bound for v in values))) for bound in BUCKETS]
            histogram.add_metric([kind], [*cumulative, ("+Inf", float(len(values)))], sum_value=sum(values))
        yield histogram

    def _queue(self, session: Session) -> Iterator[Metric]:
        now = utcnow()
        ready = (col(Job.status) == JobStatus.queued, col(Job.not_before) <= now)
        depth, oldest = session.exec(select(func.count(), func.min(Job.not_before)).where(*ready)).one()
        yield GaugeMetricFamily("vpsctl_queue_ready_jobs", "Jobs that may run now and wait for a worker",
                                value=depth)
        yield GaugeMetricFamily("vpsctl_queue_oldest_ready_age_seconds",
                                "How long the oldest job that may run has waited (0: none waits)",
                                value=seconds(oldest, now) or 0.0)
        running = session.exec(select(func.count()).where(col(Job.status) == JobStatus.running)).one()
        yield GaugeMetricFamily("vpsctl_jobs_running", "Jobs a worker runs now", value=running)

    def _outbox(self, session: Session) -> Iterator[Metric]:
        backlog = GaugeMetricFamily("vpsctl_outbox_messages", "Emails by status (pending: the backlog)",
                                    labels=["status"])
        for status, n in session.exec(select(Outbox.status, func.count()).group_by(col(Outbox.status))).all():
            backlog.add_metric([status], n)
        yield backlog

    def _hosts(self, session: Session) -> Iterator[Metric]:
        hosts = session.exec(select(Host).order_by(col(Host.id))).all()
        held = allocations(session)
        state = GaugeMetricFamily("vpsctl_host_up", "1 when the host answers (its state is not unreachable)",
                                  labels=["host", "site", "state"])
        capacity = GaugeMetricFamily("vpsctl_host_capacity", "What a host has, read from it",
                                     labels=["host", "resource"])
        allocated = GaugeMetricFamily("vpsctl_host_allocated", "What the VPS placed on a host hold",
                                      labels=["host", "resource"])
        for host in hosts:
            state.add_metric([host.name, host.site, host.state], 0 if host.state == "unreachable" else 1)
            used = held.get(host.id or 0)
            for resource, total, taken in (("vcpus", host.vcpus, used.vcpus if used else 0),
                                           ("memory_mib", host.memory_mib, used.memory_mib if used else 0),
                                           ("disk_gib", host.disk_gib, used.disk_gib if used else 0)):
                capacity.add_metric([host.name, resource], total)
                allocated.add_metric([host.name, resource], taken)
        yield from (state, capacity, allocated)

    def _audit(self, session: Session) -> Iterator[Metric]:
        hooks = session.exec(select(func.count()).where(col(Job.kind) == "hook",
                                                        col(Job.status) == JobStatus.failed)).one()
        yield CounterMetricFamily("vpsctl_hook_failures", "Ansible hook runs that failed", value=hooks)
        drift = CounterMetricFamily("vpsctl_reconciler_findings",
                                    "What the reconciler found differing from the records, by kind",
                                    labels=["kind"])
        for action in ("drift", "fenced", "unknown-domain"):
            n = session.exec(select(func.count()).where(col(Audit.action) == action)).one()
            drift.add_metric([action], n)
        yield drift

    def _webhooks(self, session: Session) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily("vpsctl_webhook_deliveries", "Webhook delivery attempts by status "
                                       "(pending: the backlog)", labels=["status"])
        failures = 0
        for status, n in session.exec(select(WebhookDelivery.status, func.count())
                                      .group_by(col(WebhookDelivery.status))).all():
            deliveries.add_metric([status], n)
            failures += n if status == "failed" else 0
        yield deliveries
        yield CounterMetricFamily("vpsctl_webhook_failures", "Webhook delivery attempts that failed (a deleted "
                                  "webhook takes its own away)", value=failures)
        disabled = session.exec(select(func.count()).select_from(Webhook).where(col(Webhook.enabled).is_(False))).one()
        yield GaugeMetricFamily("vpsctl_webhooks_disabled", "Webhooks disabled by failures in a row", value=disabled)


    def _duties(self, session: Session) -> Iterator[Metric]:
        """Each periodic duty (orchestrator/engine/ticker.py), whichever process ran it."""
        runs = CounterMetricFamily("vpsctl_periodic_runs", "Runs of a periodic duty that ended (well or not)",
                                   labels=["task"])
        failures = CounterMetricFamily("vpsctl_periodic_failures", "Runs of a periodic duty that failed",
                                       labels=["task"])
        last = GaugeMetricFamily("vpsctl_periodic_last_run_timestamp_seconds",
                                 "When the last run of a periodic duty ended (Unix time)", labels=["task"])
        took = GaugeMetricFamily("vpsctl_periodic_last_run_duration_seconds",
                                 "How long the last run of a periodic duty took", labels=["task"])
        facts = GaugeMetricFamily("vpsctl_periodic_last_run_facts", "What the last run of a periodic duty that "
                                  "ended well looked at and decided, counted (the reconciler: hosts, vps, "
                                  "as_recorded, drifts, ...; the billing run: issued, raced, ...)",
                                  labels=["task", "fact"])
        for row in session.exec(select(PeriodicRun).order_by(col(PeriodicRun.task))).all():
            runs.add_metric([row.task], row.runs)
            failures.add_metric([row.task], row.failures)
            if row.last_finished_at is not None:
                last.add_metric([row.task], row.last_finished_at.timestamp())
            duration = seconds(row.last_started_at, row.last_finished_at)
            if duration is not None:
                took.add_metric([row.task], duration)
            for fact, value in sorted(row.last_facts.items()):
                facts.add_metric([row.task, fact], value)
        yield from (runs, failures, last, took, facts)

    def _workers(self, session: Session) -> Iterator[Metric]:
        """Each worker process not stopped: its looks at the queue (orchestrator/engine/status.py)."""
        looks = CounterMetricFamily("vpsctl_worker_looks", "Claims a worker process tried", labels=["worker"])
        claimed = CounterMetricFamily("vpsctl_worker_claimed", "Jobs a worker process claimed", labels=["worker"])
        idle = GaugeMetricFamily("vpsctl_worker_idle_timestamp_seconds", "When, by its clock, a worker last looked "
                                 "at the queue and found no job ready (recorded once per heartbeat at most)",
                                 labels=["worker"])
        due = GaugeMetricFamily("vpsctl_worker_next_due_timestamp_seconds", "Then, when the queued job it waits "
                                "for may run (a deadline job, a retry)", labels=["worker", "job"])
        for row in session.exec(select(WorkerStatus).where(col(WorkerStatus.stopped_at).is_(None))
                                .order_by(col(WorkerStatus.worker))).all():
            looks.add_metric([row.worker], row.looks)
            claimed.add_metric([row.worker], row.claimed)
            if row.idle_at is not None:
                idle.add_metric([row.worker], row.idle_at.timestamp())
            if row.next_due_at is not None:
                due.add_metric([row.worker, row.next_due_job_id or ""], row.next_due_at.timestamp())
        yield from (looks, claimed, idle, due)


@router.get("/metrics", response_class=Response, operation_id="get_metrics",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(engine: EngineDep, _staff: StaffPrincipal) -> Response:
    """Jobs by kind and status, job durations, queue depth and age of the oldest ready job, the
    email backlog, hosts' capacity and allocation, hook failures, reconciliation findings, webhook
    deliveries and failures; each periodic duty's runs, failures, last run and its facts; each
    worker process's looks at the queue and the job it waits for."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(engine))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
