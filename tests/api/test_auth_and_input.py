"""Bad input and missing rights are refused with a problem document and change nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from orchestrator.core.models import ApiToken, Job, Vps
from tests.conftest import Api


@pytest.fixture
def pubkey(tmp_path: Path) -> str:
    path = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def body(pubkey: str, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "web1", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2,
                               "ssh_keys": [pubkey]}
    base.update(changes)
    return base


def counts(api: Api) -> tuple[int, int]:
    with Session(api.engine) as session:
        return (session.exec(select(func.count()).select_from(Vps)).one(),
                session.exec(select(func.count()).select_from(Job)).one())


def assert_problem(response: object, status: int, *words: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    doc: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert doc["status"] == status and doc["title"] and doc["detail"]
    for word in words:
        assert word in str(doc["detail"]), doc
    return doc


def test_health_and_docs_need_no_token(offline_api: Api) -> None:
    assert offline_api.call("GET", "/healthz").json()["status"] == "ok"
    assert offline_api.call("GET", "/openapi.json").status_code == 200
    assert offline_api.call("GET", "/docs").status_code == 200


@pytest.mark.parametrize("path", ["/v1/images", "/v1/hosts", "/v1/vps", "/v1/jobs/x"])
@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer "])
def test_every_route_needs_a_valid_token(offline_api: Api, path: str, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    assert_problem(offline_api.call("GET", path, headers=headers), 401)


def test_tokens_are_stored_hashed(offline_api: Api) -> None:
    """R6.1-root / security defaults: no usable secret is kept in clear."""
    with Session(offline_api.engine) as session:
        stored = [t.token_hash for t in session.exec(select(ApiToken)).all()]
    for token in (offline_api.support, offline_api.alice, offline_api.bob):
        assert token not in stored
        assert all(token not in h for h in stored)


def test_customers_do_not_see_hosts(offline_api: Api) -> None:
    assert_problem(offline_api.call("GET", "/v1/hosts", offline_api.alice), 403)
    hosts = offline_api.call("GET", "/v1/hosts", offline_api.support).json()["items"]
    assert hosts[0]["name"] == "h1" and hosts[0]["capacity"]["memory_mib"] == 8192


BAD_BODIES = [
    ({"image": "windows-95"}, 422, "unknown image"),
    ({"vcpus": 0}, 422, "vcpus"),
    ({"vcpus": -2}, 422, "vcpus"),
    ({"memory_mib": 0}, 422, "memory_mib"),
    ({"memory_mib": -1024}, 422, "memory_mib"),
    ({"disk_gib": 0}, 422, "disk_gib"),
    ({"disk_gib": 10**12}, 422, "disk_gib"),
    ({"vcpus": 10**9}, 422, "vcpus"),
    ({"memory_mib": 10**15}, 422, "memory_mib"),
    ({"vcpus": 64}, 422, "vcpus must be between"),  # under the schema ceiling, over the setting
    ({"memory_mib": 64}, 422, "at least 128 MiB"),  # under the image's minimum
    ({"vcpus": 20}, 422, "no host can hold"),  # more than the only host can hold
    ({"memory_mib": 20_000}, 422, "no host can hold"),  # within the quota, over the host
    ({"disk_gib": 500}, 422, "no host can hold"),
    ({"name": "<domain>&'\"x"}, 422, "name"),
    ({"name": "a" * 10_000}, 422, "name"),
    ({"name": "Web 1"}, 422, "name"),
    ({"name": ""}, 422, "name"),
    ({"name": "x]]></name><devices>"}, 422, "name"),
    ({"ssh_keys": []}, 422, "ssh_keys"),
    ({"ssh_keys": ["not a key"]}, 422, "SSH"),
    ({"ssh_keys": ["ssh-ed25519 AAAA!!!notbase64"]}, 422, "SSH"),
    ({"ssh_keys": ["-----BEGIN OPENSSH PRIVATE KEY-----"]}, 422, "private key"),
    ({"vcpus": "two"}, 422, "vcpus"),
    ({"vcpus": 1.5}, 422, "vcpus"),
    ({"unexpected": True}, 422, "unexpected"),
    ({"site": "Atlantis"}, 422, "R2-locations"),  # not a contract site
    ({"site": "Tokyo"}, 422, "no host is available in Tokyo"),  # a contract site without a host
]


@pytest.mark.parametrize(("changes", "status", "word"), BAD_BODIES)
def test_bad_create_is_refused_and_changes_nothing(
    offline_api: Api, pubkey: str, changes: dict[str, object], status: int, word: str
) -> None:
    """The create's checks, as staff make a VPS for alice (customers order: tests/api/test_plans_orders.py)."""
    before = counts(offline_api)
    response = offline_api.unbilled("alice", json=body(pubkey, **changes))
    assert_problem(response, status, word)
    assert counts(offline_api) == before


def test_key_comment_with_yaml_or_shell_characters_is_refused(offline_api: Api, pubkey: str) -> None:
    key = " ".join(pubkey.split()[:2]) + " evil#'$(reboot)"
    response = offline_api.unbilled("alice", json=body(pubkey, ssh_keys=[key]))
    assert_problem(response, 422, "comment")


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b"[]", b"null", b'{"name": "x"', b"\xff\xfe", b""]
)
def test_malformed_json_is_a_problem(offline_api: Api, raw: bytes) -> None:
    before = counts(offline_api)
    response = offline_api.call("POST", "/v1/vps", offline_api.alice, content=raw,
                                headers={"Content-Type": "application/json"})
    assert_problem(response, 422)
    assert counts(offline_api) == before


def test_staff_must_name_an_existing_customer(offline_api: Api, pubkey: str) -> None:
    why = "test: a VPS made without an order"
    assert_problem(offline_api.call("POST", "/v1/vps", offline_api.support, json=body(pubkey, reason=why)),
                   422, "customer")
    assert_problem(offline_api.call("POST", "/v1/vps", offline_api.support,
                                    json=body(pubkey, customer="nobody", reason=why)), 422, "nobody")


def test_accepted_create_and_isolation_between_customers(offline_api: Api, pubkey: str) -> None:
    """R7-confidential: a customer sees only their own resources; the rest is a 404."""
    response = offline_api.order(offline_api.alice, json=body(pubkey))
    assert response.status_code == 202, response.text
    vps, job = response.json()["vps"], response.json()["job"]
    assert vps["status"] == "building" and vps["customer"] == "alice"
    assert vps["host"] is None  # a client never sees hosts
    assert job["status"] == "queued" and job["kind"] == "create"
    # bob sees none of it, exactly as if it did not exist
    assert_problem(offline_api.call("GET", f"/v1/vps/{vps['id']}", offline_api.bob), 404)
    assert_problem(offline_api.call("GET", f"/v1/jobs/{job['id']}", offline_api.bob), 404)
    assert_problem(offline_api.call("DELETE", f"/v1/vps/{vps['id']}?confirm_data_loss=true", offline_api.bob), 404)
    assert offline_api.call("GET", "/v1/vps", offline_api.bob).json() == {"items": [], "next": None}
    assert [v["id"] for v in offline_api.call("GET", "/v1/vps", offline_api.alice).json()["items"]] == [vps["id"]]
    assert offline_api.call("GET", f"/v1/vps/{vps['id']}", offline_api.support).json()["host"] == "h1"
    # a malformed id is a 404 too, not a 500
    assert_problem(offline_api.call("GET", "/v1/vps/../../etc", offline_api.alice), 404)


def test_idempotency_key_returns_the_same_order(offline_api: Api, pubkey: str) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = offline_api.order(offline_api.alice, json=body(pubkey), headers=headers).json()
    second = offline_api.order(offline_api.alice, json=body(pubkey), headers=headers).json()
    assert first["vps"]["id"] == second["vps"]["id"] and first["job"]["id"] == second["job"]["id"]
    assert counts(offline_api) == (1, 1)


def test_capacity_counts_what_is_already_ordered(offline_api: Api, pubkey: str) -> None:
    # h1: 8192 MiB, 512 reserved -> 7680 MiB to give
    ok = offline_api.order(offline_api.alice, json=body(pubkey, memory_mib=7000))
    assert ok.status_code == 202
    assert_problem(offline_api.order(offline_api.bob, json=body(pubkey, memory_mib=1024)),
                   422, "no host can hold")


def test_delete_needs_explicit_confirmation(offline_api: Api, pubkey: str) -> None:
    vps = offline_api.order(offline_api.alice, json=body(pubkey)).json()["vps"]
    before = counts(offline_api)
    assert_problem(offline_api.call("DELETE", f"/v1/vps/{vps['id']}", offline_api.alice), 422, "confirm_data_loss")
    assert counts(offline_api) == before
    accepted = offline_api.call("DELETE", f"/v1/vps/{vps['id']}?confirm_data_loss=true", offline_api.alice)
    assert accepted.status_code == 202 and accepted.json()["job"]["kind"] == "delete"
    again = offline_api.call("DELETE", f"/v1/vps/{vps['id']}?confirm_data_loss=true", offline_api.alice)
    assert again.json()["job"]["id"] == accepted.json()["job"]["id"]
