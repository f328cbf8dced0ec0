"""R6.3-evidence on the real libvirtd: the client serves a page from their VPS (a web server they
started themselves, over their own ssh); staff ask for evidence and the worker fetches the page
the way the orchestrator reaches guests (the proxy command into the test network), never logging
in (R2-no-guest-management).  The stored body's sha256 is the page's; the evidence is listed for
staff only (403 for the client, 404 for another customer); the VPS's events show the action.
Once the VPS is cut off (R5.5-cutoff) a request fails at once naming the cut-off, and even a raw
fetch through the proxy ends within its timeout instead of hanging."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from orchestrator.adapters.web import fetch
from tests.conftest import Api
from tests.integration.lifecycle import order

PAGE = "<h1>phishing</h1>\n"


def test_staff_keep_evidence_of_the_page_a_vps_serves(live_api: Api, tmp_path: Path) -> None:
    api = live_api
    guest = order(api, tmp_path)
    # what the client does on their own VPS: a web server on port 80
    assert "httpd" in guest.ssh_eventually("busybox --list").split()
    guest.ssh("mkdir -p /tmp/www && printf '<h1>phishing</h1>\\n' > /tmp/www/index.html"
              " && busybox httpd -p 80 -h /tmp/www && sleep 1")
    served = guest.ssh("cat /tmp/www/index.html")
    assert served == PAGE

    job = guest.do("evidence", {"reason": "phishing page reported by a bank", "path": "/index.html"},
                   token=api.support)
    assert job["status"] == "succeeded", job

    [item] = api.call("GET", f"/v1/vps/{guest.id}/evidence", api.support).json()["items"]
    address = guest.record["addresses"][0]
    assert item["job_id"] == job["id"] and item["url"] == f"http://{address}/index.html"
    assert item["status_code"] == 200 and not item["truncated"] and item["error"] is None
    assert item["body_sha256"] == hashlib.sha256(PAGE.encode()).hexdigest()
    raw = api.call("GET", item["download"], api.support)
    assert raw.status_code == 200 and raw.content.endswith(PAGE.encode())
    body = raw.content.split(b"\r\n\r\n", 1)[1]
    assert hashlib.sha256(body).hexdigest() == item["body_sha256"]

    for token, expected in ((api.alice, 403), (api.bob, 404)):
        assert api.call("GET", f"/v1/vps/{guest.id}/evidence", token).status_code == expected
        assert api.call("GET", f"/v1/evidence/{item['id']}", token).status_code == expected
        assert api.call("POST", f"/v1/vps/{guest.id}/evidence", token, json={"reason": "x"}).status_code == expected

    events = api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", api.support).json()["items"]
    done = [e for e in events if e["operation"] == "evidence" and e["step"] == "fetch_content"
            and e["status"] == "done"]
    assert len(done) == 1 and item["id"] in done[0]["message"] and done[0]["requested_by"].startswith("support")
    # the client sees that the check happened (the action is not hidden), not the evidence itself
    client_events = api.call("GET", f"/v1/vps/{guest.id}/events?order=asc&limit=500", api.alice).json()["items"]
    assert any(e["operation"] == "evidence" for e in client_events)

    cut = guest.do("cutoff", {"reason": "hacked"}, token=api.support)
    assert cut["status"] == "succeeded", cut
    refused = guest.do("evidence", {"reason": "check again"}, token=api.support)
    assert refused["status"] == "failed" and "R5.5-cutoff" in refused["error"], refused
    started = time.monotonic()
    behind_the_cut = fetch(address, 80, "/index.html", proxy_command=api.settings.hosts.guest_proxy_command, timeout=3)
    assert behind_the_cut.status_code is None and behind_the_cut.error is not None
    assert time.monotonic() - started < 15
    assert len(api.call("GET", f"/v1/vps/{guest.id}/evidence", api.support).json()["items"]) == 2
