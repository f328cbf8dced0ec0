"""``GET /metrics`` (api/routers/metrics.py): the Prometheus text format, parsed back with
prometheus_client's own parser, for a world whose jobs, emails and host are known; staff only."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

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
