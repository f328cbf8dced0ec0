"""``GET /metrics`` (api/routers/metrics.py): the Prometheus text format, parsed back with
prometheus_client's own parser, for a world whose jobs, emails and host are known; staff only."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from orchestrator.core.clock import utcnow
from orchestrator.core.models import Vps
from orchestrator.engine import jobs, status, ticker
from tests.api.fakeworld import make_world


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_show_jobs_queue_hosts_and_findings_to_staff_only(tmp_path: Path) -> None:
    world = make_world(tmp_path, "metrics")  # alice's VPS: create, backup, attach-disk, all run
    api = world.api
    assert api.call("POST", f"/v1/vps/{world.vps_id}/reboot", api.alice, json={"hard": True}).status_code == 202
    # the reboot is queued, not run: one ready job

    assert api.call("GET", "/metrics").status_code == 401
    assert api.call("GET", "/metrics", api.alice).status_code == 403
    answer = api.call("GET", "/metrics", api.support)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    found = samples(answer.text)

    def one(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert one("vpsctl_jobs", kind="create", status="succeeded") == 1
    assert one("vpsctl_jobs", kind="backup", status="succeeded") == 1
    assert one("vpsctl_jobs", kind="attach-disk", status="succeeded") == 1
    assert one("vpsctl_jobs", kind="reboot", status="queued") == 1
    assert one("vpsctl_queue_ready_jobs") == 1
    assert one("vpsctl_queue_oldest_ready_age_seconds") >= 0
    assert one("vpsctl_jobs_running") == 0
    assert one("vpsctl_job_duration_seconds_count", kind="create") == 1
    assert one("vpsctl_job_duration_seconds_bucket", kind="create", le="+Inf") == 1
    assert ("vpsctl_job_duration_seconds_count", (("kind", "reboot"),)) not in found  # not finished
    # the host of the world: 1 vCPU, 256 MiB, 2 GiB root + a 1 GiB data disk placed on it
    assert one("vpsctl_host_up", host="h1", site="Marseille", state="enabled") == 1
    assert one("vpsctl_host_allocated", host="h1", resource="vcpus") == 1
    assert one("vpsctl_host_allocated", host="h1", resource="memory_mib") == 256
    assert one("vpsctl_host_allocated", host="h1", resource="disk_gib") == 3
    assert one("vpsctl_host_capacity", host="h1", resource="vcpus") > 0
    assert one("vpsctl_hook_failures_total") == 0
    assert one("vpsctl_reconciler_findings_total", kind="drift") == 0

    world.run()  # the reboot runs: no job waits any more
    again = samples(api.call("GET", "/metrics", api.support).text)
    assert again[("vpsctl_queue_ready_jobs", ())] == 0
    assert again[("vpsctl_jobs", (("kind", "reboot"), ("status", "succeeded")))] == 1


def test_metrics_show_each_periodic_duty_s_runs_and_each_worker_s_looks(tmp_path: Path) -> None:
    """The reconciler's and the billing run's passes, run by the ticker as every worker process
    runs them, with what the last one looked at and decided; a running worker's looks at the
    queue, the deadline job it waits for; none of it once the worker stopped."""
    world = make_world(tmp_path, "duties", job_heartbeat_seconds=0.2)
    api = world.api
    wanted = {"reconcile", "billing_run"}
    last = {task.name: time.monotonic() for task in ticker.TASKS if task.name not in wanted}
    for _ in range(2):
        ticker.run_due(api.engine, api.settings, world.worker.drivers, dict(last))
    found = samples(api.call("GET", "/metrics", api.support).text)
    for task in wanted:
        assert found[("vpsctl_periodic_runs_total", (("task", task),))] == 2
        assert found[("vpsctl_periodic_failures_total", (("task", task),))] == 0
        assert found[("vpsctl_periodic_last_run_timestamp_seconds", (("task", task),))] > 0
        assert found[("vpsctl_periodic_last_run_duration_seconds", (("task", task),))] >= 0
    facts = {dict(labels)["fact"]: value for (name, labels), value in found.items()
             if name == "vpsctl_periodic_last_run_facts" and dict(labels)["task"] == "reconcile"}
    assert facts == {"hosts": 1, "hosts_down": 0, "vps": 1, "as_recorded": 1, "drifts": 0, "incidents_opened": 0,
                     "busy": 0, "resolved": 0}  # alice's VPS, running on h1 as recorded
    billing = {dict(labels)["fact"]: value for (name, labels), value in found.items()
               if name == "vpsctl_periodic_last_run_facts" and dict(labels)["task"] == "billing_run"}
    # alice's subscription, its first period invoiced at the order: nothing to issue
    assert billing == {"subscriptions": 1, "issued": 0, "revised": 0, "defaults": 0, "raced": 0}

    # A deadline job a week ahead; a worker that runs, looks at the queue, finds it not due.
    with Session(api.engine) as session:
        due = utcnow() + timedelta(days=7)
        waiting = jobs.enqueue(session, "reboot", session.get(Vps, world.vps_id), {}, "test", 1, 3,
                               scheduled_at=due).id
        session.commit()
    thread = world.worker.start_thread()
    try:
        deadline = time.monotonic() + 20
        while (row := status.worker_status(api.engine, world.worker.worker_id)) is None or row.idle_at is None:
            assert time.monotonic() < deadline, "the worker recorded no look at the queue"
            time.sleep(0.05)
        found = samples(api.call("GET", "/metrics", api.support).text)
    finally:
        world.worker.stop()
        thread.join(timeout=20)
    me = (("worker", world.worker.worker_id),)
    assert found[("vpsctl_worker_looks_total", me)] >= 1
    assert found[("vpsctl_worker_claimed_total", me)] == 0
    assert found[("vpsctl_worker_idle_timestamp_seconds", me)] <= due.timestamp()
    assert found[("vpsctl_worker_next_due_timestamp_seconds", (("job", waiting), *me))] == due.timestamp()
    stopped = samples(api.call("GET", "/metrics", api.support).text)
    assert not [key for key in stopped if key[0].startswith("vpsctl_worker_")]  # a stopped worker is not shown
    row = status.worker_status(api.engine, world.worker.worker_id)
    assert row is not None and row.stopped_at is not None
