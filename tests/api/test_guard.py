"""What every request passes first (api/guard.py): the token before the body, a bounded body, and
idempotency keys scoped to the account that sent them."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from orchestrator.core.auth import create_token
from orchestrator.core.models import ChangeOrder, Job, Role, Vps
from tests.api.test_change_orders import running_vps
from tests.conftest import Api
from tests.served import serving


@pytest.fixture
def pubkey(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


def order(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]}


def count(api: Api, table: Any) -> int:
    with Session(api.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def test_no_token_is_refused_before_the_body_is_read(offline_api: Api) -> None:
    malformed = offline_api.call("POST", "/v1/vps", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 401 and malformed.headers["content-type"] == "application/problem+json"
    assert malformed.headers["www-authenticate"] == "Bearer"
    bad_token = offline_api.call("POST", "/v1/vps", "vps_not-a-token", content=b"{not json",
                                 headers={"Content-Type": "application/json"})
    assert bad_token.status_code == 401
    assert offline_api.call("GET", "/healthz").status_code == 200  # public
    assert offline_api.call("GET", "/openapi.json").status_code == 200


def test_a_body_over_the_limit_is_refused_and_changes_nothing(offline_api: Api, pubkey: str) -> None:
    limit = offline_api.settings.api.max_body_bytes
    huge = dict(order("big", pubkey), padding="x" * (limit + 1))
    refused = offline_api.call("POST", "/v1/vps", offline_api.alice, json=huge)
    assert refused.status_code == 413 and refused.json()["status"] == 413
    assert count(offline_api, Vps) == 0 and count(offline_api, Job) == 0


@pytest.fixture
def served(offline_api: Api) -> Iterator[int]:
    """The same application on a real HTTP server on loopback."""
    with serving(offline_api.client.app) as port:
        yield port


def test_an_anonymous_64_mib_body_is_answered_before_it_is_sent(served: int) -> None:
    """Only the headers go out (announcing 64 MiB): the 401 comes back without the server
    waiting for, or reading, the body."""
    with socket.create_connection(("127.0.0.1", served), timeout=10) as sock:
        sock.sendall(b"POST /v1/vps HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 67108864\r\n\r\n")
        sock.settimeout(5)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]


def test_an_announced_oversized_body_is_refused_before_it_is_sent(served: int, offline_api: Api) -> None:
    with socket.create_connection(("127.0.0.1", served), timeout=10) as sock:
        sock.sendall(b"POST /v1/vps HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + offline_api.alice.encode() + b"\r\n"
                     b"Content-Length: 67108864\r\n\r\n")
        sock.settimeout(5)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_idempotency_keys_never_cross_customers(offline_api: Api, pubkey: str) -> None:
    """Two customers whose tokens carry the same label, the same key: each gets their own order."""
    api = offline_api
    with Session(api.engine) as session:
        alice_api = create_token(session, Role.customer, "alice", label="api")
        bob_api = create_token(session, Role.customer, "bob", label="api")
    headers = {"Idempotency-Key": "order-1"}
    first = api.order(alice_api, json=order("alices", pubkey), headers=headers)
    second = api.order(bob_api, json=order("bobs", pubkey), headers=headers)
    assert first.status_code == second.status_code == 202, second.text
    assert second.json()["vps"]["name"] == "bobs" and second.json()["vps"]["id"] != first.json()["vps"]["id"]
    assert second.json()["vps"]["customer"] == "bob"
    assert count(api, Vps) == 2


def test_the_same_key_replays_the_answer_and_another_request_is_refused(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    with Session(api.engine) as session:
        alice_laptop = create_token(session, Role.customer, "alice", label="laptop")
    headers = {"Idempotency-Key": "order-2"}
    first = api.order(api.alice, json=order("web", pubkey), headers=headers)
    again = api.order(alice_laptop, json=order("web", pubkey), headers=headers)  # her account
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = api.order(api.alice, json=order("other", pubkey), headers=headers)
    assert other.status_code == 422 and "another request" in other.json()["detail"]
    assert count(api, Vps) == 1


def test_every_job_starting_post_takes_a_key(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps_id = running_vps(api, api.alice, pubkey)
    headers = {"Idempotency-Key": "stop-1"}
    stops = [api.call("POST", f"/v1/vps/{vps_id}/stop", api.alice, headers=headers) for _ in range(3)]
    assert [s.status_code for s in stops] == [202] * 3 and len({s.json()["job"]["id"] for s in stops}) == 1
    headers = {"Idempotency-Key": "more-memory"}
    asks = [api.call("POST", f"/v1/vps/{vps_id}/change-orders", api.alice, json={"memory_mib": 512},
                     headers=headers) for _ in range(2)]
    assert [a.status_code for a in asks] == [201, 201] and count(api, ChangeOrder) == 1
