"""R6.3-evidence through the API and the worker: staff ask for the content a VPS serves (here a
web server on 127.0.0.1 stands for the guest); the job fetches it, keeps the raw response (0600)
and records it; the action is in the VPS's events; customers get 403 for their own VPS and 404
for another's; bad input is refused and changes nothing; an unreachable or cut-off VPS ends the
job failed with the reason recorded."""

from __future__ import annotations

import hashlib
import socket
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import Session, func, select

from orchestrator.compute.hosts import Drivers
from orchestrator.core.accounts import customer_named
from orchestrator.core.models import Evidence, Job, Vps, VpsStatus
from orchestrator.engine.worker import Worker
from orchestrator.operations.evidence import raw_path
from tests.conftest import Api

PAGE = b"<h1>phishing</h1>\n"


class Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def alice_vps(api: Api, **changes: Any) -> str:
    with Session(api.engine) as session:
        alice = customer_named(session, "alice")
        vps = Vps(name="shop", customer_id=alice.id, image="tiny", vcpus=1, memory_mib=256, disk_gib=2,
                  status=VpsStatus.running, addresses=["127.0.0.1"], **changes)
        session.add(vps)
        session.commit()
        return vps.id


def run_jobs(api: Api) -> None:
    """Run the queued jobs as a worker on this machine would reach 127.0.0.1 (no proxy command)."""
    worker = Worker(api.engine, api.settings.replace(guest_proxy_command=""), Drivers())
    while worker.run_once():
        pass


def count(api: Api, model: Any) -> int:
    with Session(api.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def ask(api: Api, vps_id: str, token: str, **body: Any) -> Any:
    return api.call("POST", f"/v1/vps/{vps_id}/evidence", token, json=body)


def test_staff_fetch_and_keep_what_the_vps_serves(offline_api: Api, web: int) -> None:
    api = offline_api
    vps_id = alice_vps(api)
    asked = ask(api, vps_id, api.support, reason="phishing page reported", port=web, path="/index.html")
    assert asked.status_code == 202, asked.text
    job_id = asked.json()["job"]["id"]
    run_jobs(api)
    job = api.call("GET", f"/v1/jobs/{job_id}", api.support).json()
    assert job["status"] == "succeeded", job["error"]

    listed = api.call("GET", f"/v1/vps/{vps_id}/evidence", api.support)
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["job_id"] == job_id and item["status_code"] == 200 and item["error"] is None
    assert item["body_sha256"] == hashlib.sha256(PAGE).hexdigest() and item["size_bytes"] == len(PAGE)
    assert item["url"] == f"http://127.0.0.1:{web}/index.html" and item["reason"] == "phishing page reported"
    assert item["requested_by"].startswith("support") and not item["truncated"]
    assert ["Content-Type", "text/html"] in item["headers"]
    assert api.call("GET", f"/v1/evidence/{item['id']}", api.support).json() == item

    path = raw_path(api.settings, job_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = api.call("GET", item["download"], api.support)
    assert raw.status_code == 200 and raw.content == path.read_bytes()
    assert raw.content.startswith(b"HTTP/1.0 200") and raw.content.endswith(PAGE)

    events = api.call("GET", f"/v1/vps/{vps_id}/events?order=asc&limit=500", api.support).json()["items"]
    fetched = [e for e in events if e["operation"] == "evidence" and e["step"] == "fetch_content"
               and e["status"] == "done"]
    assert len(fetched) == 1 and item["id"] in fetched[0]["message"]
    assert fetched[0]["requested_by"] == item["requested_by"]
    assert any(e["operation"] == "evidence-download" and item["id"] in e["message"] for e in events)


def test_customers_get_403_for_their_own_and_404_for_others(offline_api: Api, web: int) -> None:
    api = offline_api
    vps_id = alice_vps(api)
    ask(api, vps_id, api.support, reason="check", port=web)
    run_jobs(api)
    [item] = api.call("GET", f"/v1/vps/{vps_id}/evidence", api.support).json()["items"]
    jobs_before = count(api, Job)
    for token, expected in ((api.alice, 403), (api.bob, 404)):
        assert ask(api, vps_id, token, reason="x", port=web).status_code == expected
        assert api.call("GET", f"/v1/vps/{vps_id}/evidence", token).status_code == expected
        assert api.call("GET", f"/v1/evidence/{item['id']}", token).status_code == expected
        assert api.call("GET", item["download"], token).status_code == expected
    assert count(api, Job) == jobs_before
    assert api.call("GET", "/v1/evidence/not-an-id", api.support).status_code == 404


@pytest.mark.parametrize("body", [
    {},
    {"reason": "   "},
    {"reason": "x", "path": "index.html"},
    {"reason": "x", "path": "/a b"},
    {"reason": "x", "path": "/\r\nX-Injected: 1"},
    {"reason": "x", "host_header": "shop.example\r\nX-Injected: 1"},
    {"reason": "x", "port": 0},
    {"reason": "x", "port": 70000},
    {"reason": "x", "follow": True},
])
def test_bad_input_is_refused_and_changes_nothing(offline_api: Api, body: dict[str, Any]) -> None:
    vps_id = alice_vps(offline_api)
    refused = ask(offline_api, vps_id, offline_api.support, **body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert count(offline_api, Job) == 0


def test_a_vps_that_cannot_be_reached_fails_the_job_with_the_reason(offline_api: Api) -> None:
    api = offline_api
    probe = socket.create_server(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    vps_id = alice_vps(api)
    job_id = ask(api, vps_id, api.support, reason="check", port=closed_port).json()["job"]["id"]
    run_jobs(api)
    job = api.call("GET", f"/v1/jobs/{job_id}", api.support).json()
    assert job["status"] == "failed" and "unreachable" in job["error"]
    [item] = api.call("GET", f"/v1/vps/{vps_id}/evidence", api.support).json()["items"]
    assert item["status_code"] is None and item["body_sha256"] is None and item["error"].startswith("unreachable")


def test_a_cut_off_vps_fails_the_job_naming_the_cutoff(offline_api: Api, web: int) -> None:
    """R5.5-cutoff: the link is down, so nothing is fetched and the job says why, at once."""
    api = offline_api
    vps_id = alice_vps(api, cut_off=True, cut_off_reason="hacked")
    with Session(api.engine) as session:
        record = session.get(Vps, vps_id)
        assert record is not None
        record.status = VpsStatus.cut_off
        session.add(record)
        session.commit()
    job_id = ask(api, vps_id, api.support, reason="check", port=web).json()["job"]["id"]
    run_jobs(api)
    job = api.call("GET", f"/v1/jobs/{job_id}", api.support).json()
    assert job["status"] == "failed" and "R5.5-cutoff" in job["error"]
    with Session(api.engine) as session:
        [row] = session.exec(select(Evidence).where(Evidence.vps_id == vps_id)).all()
    assert row.error is not None and "cut off" in row.error and row.status_code is None
