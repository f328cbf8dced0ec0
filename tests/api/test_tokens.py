"""API tokens over the API (api/routers/tokens.py) and the roles they carry: every token expires
and can be revoked, both refused at once (before the body is read); listings never show a token
or its hash; a customer sees and manages only their own account's tokens; customers are created
explicitly; an automation token calls only what its scopes allow, support everything staff may."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from orchestrator.core.models import ApiToken, Audit, Customer, IdempotentRequest, Job, Maintenance
from tests.conftest import Api


def count(api: Api, table: Any) -> int:
    with Session(api.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def new_token(api: Api, by: str, **body: Any) -> dict[str, Any]:
    response = api.call("POST", "/v1/tokens", by, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed(api: Api, by: str) -> dict[str, dict[str, Any]]:
    """The tokens ``by`` may list, by label."""
    response = api.call("GET", "/v1/tokens?order=asc", by)
    assert response.status_code == 200, response.text
    return {t["label"]: t for t in response.json()["items"]}


def assert_problem(response: Any, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    for word in words:
        assert word in response.json()["detail"], response.json()


def refused_before_the_body(api: Api, token: str, *words: str) -> None:
    """A request with ``token`` is a 401 naming why, even with a body that is not JSON: the
    guard (api/guard.py) answers before reading it."""
    assert_problem(api.call("GET", "/v1/images", token), 401, *words)
    malformed = api.call("POST", "/v1/vps", token, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_problem(malformed, 401, *words)
    assert malformed.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def pubkey(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


def test_a_token_expires_after_its_days(offline_api: Api, clock: Any) -> None:
    made = new_token(offline_api, offline_api.support, role="support", label="one day", days=1)
    created = datetime.fromisoformat(made["created_at"]).replace(tzinfo=UTC)
    assert datetime.fromisoformat(made["expires_at"]).replace(tzinfo=UTC) - created == timedelta(days=1)
    assert offline_api.call("GET", "/v1/images", made["token"]).status_code == 200
    clock.advance(timedelta(hours=23))
    assert offline_api.call("GET", "/v1/images", made["token"]).status_code == 200
    clock.advance(timedelta(hours=1, minutes=1))
    refused_before_the_body(offline_api, made["token"], "expired")
    assert listed(offline_api, offline_api.support)["one day"]["status"] == "expired"


def test_a_token_lives_90_days_by_default(offline_api: Api) -> None:
    made = new_token(offline_api, offline_api.alice, label="ci")
    created = datetime.fromisoformat(made["created_at"]).replace(tzinfo=UTC)
    assert datetime.fromisoformat(made["expires_at"]).replace(tzinfo=UTC) - created == timedelta(days=90)


def test_a_revoked_token_is_refused_from_the_next_request(offline_api: Api) -> None:
    api = offline_api
    made = new_token(api, api.alice, label="laptop")
    assert api.call("GET", "/v1/vps", made["token"]).status_code == 200
    revoked = api.call("POST", f"/v1/tokens/{made['id']}/revoke", api.alice)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"] is not None
    refused_before_the_body(api, made["token"], "revoked")
    assert api.call("GET", "/v1/vps", api.alice).status_code == 200  # her other token still works
    assert_problem(api.call("POST", f"/v1/tokens/{made['id']}/revoke", api.alice), 409, "revoked already")
    with Session(api.engine) as session:
        audit = session.exec(select(Audit).where(Audit.action == "token.revoked")).one()
    assert audit.actor == "customer:alice" and f"token {made['id']} " in audit.detail


def test_support_revokes_any_token(offline_api: Api) -> None:
    api = offline_api
    bob_id = listed(api, api.support)["bob"]["id"]
    assert api.call("POST", f"/v1/tokens/{bob_id}/revoke", api.support).status_code == 200
    refused_before_the_body(api, api.bob, "revoked")


def test_a_token_is_shown_once_and_listings_never_show_it_or_its_hash(offline_api: Api) -> None:
    api = offline_api
    made = new_token(api, api.support, role="customer", customer="carol", label="carol's shop")
    assert made["token"].startswith("vps_") and made["customer"] == "carol" and made["role"] == "customer"
    secrets = [api.support, api.alice, api.bob, made["token"]]
    hashes = [hashlib.sha256(t.encode()).hexdigest() for t in secrets]
    answers = [api.call("GET", "/v1/tokens", api.support), api.call("GET", "/v1/tokens", api.alice),
               api.call("GET", f"/v1/tokens/{made['id']}", api.support),
               api.call("GET", "/v1/tokens?customer=carol", api.support)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for secret in secrets + hashes:
            assert secret not in answer.text
    assert [t["label"] for t in answers[3].json()["items"]] == ["carol's shop"]
    assert set(answers[0].json()["items"][0]) == {"id", "role", "customer", "label", "scopes", "status", "created_at",
                                         "expires_at", "last_used_at", "revoked_at"}


def test_a_new_token_is_never_kept_for_an_idempotency_key_replay(offline_api: Api) -> None:
    """The answer holding the token says ``no-store``; the guard keeps no copy of it (the token
    would lie in clear in the idempotent-requests table), and a replay is a 409 without it."""
    api = offline_api
    first = api.call("POST", "/v1/tokens", api.alice, json={"label": "ci"}, headers={"Idempotency-Key": "t1"})
    assert first.status_code == 201 and first.headers["cache-control"] == "no-store"
    token = first.json()["token"]
    again = api.call("POST", "/v1/tokens", api.alice, json={"label": "ci"}, headers={"Idempotency-Key": "t1"})
    assert again.status_code == 409 and token not in again.text
    with Session(api.engine) as session:
        kept = session.exec(select(IdempotentRequest)).all()
        assert kept and all(token not in (row.body or "") for row in kept)
        assert session.exec(select(func.count()).select_from(ApiToken).where(ApiToken.label == "ci")).one() == 1


def test_last_use_is_recorded(offline_api: Api) -> None:
    api = offline_api
    tokens = listed(api, api.support)
    assert tokens["support"]["last_used_at"] is not None  # this very request
    assert tokens["bob"]["last_used_at"] is None  # never used


def test_a_customer_sees_and_revokes_only_their_own_tokens(offline_api: Api) -> None:
    api = offline_api
    everyone = listed(api, api.support)
    assert list(listed(api, api.alice)) == ["alice"]
    assert list(listed(api, api.bob)) == ["bob"]
    for label in ("bob", "support"):
        other = everyone[label]["id"]
        assert_problem(api.call("GET", f"/v1/tokens/{other}", api.alice), 404, f"no token {other}")
        assert_problem(api.call("POST", f"/v1/tokens/{other}/revoke", api.alice), 404, f"no token {other}")
    assert_problem(api.call("GET", "/v1/tokens/999999", api.alice), 404, "no token 999999")  # the same answer
    assert_problem(api.call("GET", "/v1/tokens?customer=bob", api.alice), 403, "only their own")
    assert api.call("GET", "/v1/vps", api.bob).status_code == 200  # untouched


def test_a_customer_makes_customer_tokens_for_themselves_only(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    before = count(api, ApiToken)
    assert_problem(api.call("POST", "/v1/tokens", api.alice, json={"role": "support"}), 403, "customer tokens only")
    assert_problem(api.call("POST", "/v1/tokens", api.alice, json={"role": "automation", "scopes": ["vps:read"]}),
                   403, "customer tokens only")
    assert_problem(api.call("POST", "/v1/tokens", api.alice, json={"customer": "bob"}), 403, "themselves only")
    assert_problem(api.call("POST", "/v1/tokens", api.alice, json={"scopes": ["vps:read"]}), 422, "only automation")
    assert_problem(api.call("POST", "/v1/tokens", api.alice, json={"days": 0}), 422, "days")
    assert_problem(api.call("POST", "/v1/tokens", api.alice, json={"days": 3651}), 422, "days")
    assert count(api, ApiToken) == before
    made = new_token(api, api.alice, label="ci")
    assert (made["role"], made["customer"], made["scopes"]) == ("customer", "alice", [])
    ordered = api.order(made["token"], json={
        "name": "web1", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [pubkey]})
    assert ordered.status_code == 202 and ordered.json()["vps"]["customer"] == "alice"
    assert list(listed(api, made["token"])) == ["alice", "ci"]


def test_staff_make_customer_tokens_for_existing_customers_only(offline_api: Api) -> None:
    api = offline_api
    before = (count(api, ApiToken), count(api, Customer))
    refused = api.call("POST", "/v1/tokens", api.support, json={"role": "customer", "customer": "nobody"})
    assert_problem(refused, 422, "no customer named 'nobody'")
    assert_problem(api.call("POST", "/v1/tokens", api.support, json={"role": "customer"}), 422, "customer")
    assert_problem(api.call("POST", "/v1/tokens", api.support, json={"role": "support", "customer": "alice"}),
                   422, "only customer tokens")
    assert (count(api, ApiToken), count(api, Customer)) == before


def test_customers_are_created_explicitly(offline_api: Api) -> None:
    api = offline_api
    made = api.call("POST", "/v1/customers", api.support,
                    json={"name": "Dupont & Fils", "email": "compta@dupont.example", "language": "fr"})
    assert made.status_code == 201, made.text
    assert {k: made.json()[k] for k in ("name", "email", "language")} == {
        "name": "Dupont & Fils", "email": "compta@dupont.example", "language": "fr"}
    before = count(api, Customer)
    for body, status, word in [
        ({"name": "Dupont & Fils", "email": "other@dupont.example", "language": "fr"}, 409, "exists already"),
        ({"name": "dave", "email": "not an address", "language": "en"}, 422, "email"),
        ({"name": "dave", "email": "dave@example.test\nBcc: x@example.test", "language": "en"}, 422, "email"),
        ({"name": "dave", "email": "dave@example.test", "language": "de"}, 422, "language"),
        ({"name": "4711", "email": "dave@example.test", "language": "en"}, 422, "digits"),
        ({"name": "dave", "language": "en"}, 422, "email"),
    ]:
        assert_problem(api.call("POST", "/v1/customers", api.support, json=body), status, word)
    assert count(api, Customer) == before
    assert_problem(api.call("POST", "/v1/customers", api.alice,
                            json={"name": "eve", "email": "eve@example.test", "language": "en"}), 403)
    names = [c["name"] for c in api.call("GET", "/v1/customers?order=asc", api.support).json()["items"]]
    assert names == ["alice", "bob", "carol", "Dupont & Fils"]
    token = new_token(api, api.support, role="customer", customer="Dupont & Fils")["token"]
    assert api.call("GET", "/v1/vps", token).json() == {"items": [], "next": None}


def test_an_automation_token_calls_only_what_its_scopes_allow(offline_api: Api, pubkey: str) -> None:
    api = offline_api
    vps = api.order(api.alice, json={
        "name": "web1", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [pubkey]}).json()
    made = new_token(api, api.support, role="automation", label="billing cron", scopes=["billing:write", "vps:read"])
    assert made["scopes"] == ["billing:write", "vps:read"] and made["customer"] is None
    robot = made["token"]
    jobs_before = count(api, Job)
    maintenance = {"vps_ids": [vps["vps"]["id"]], "starts_at": "2199-01-05T10:00:00+00:00",
                   "duration_minutes": 30, "reason": "kernel"}
    refusals = [
        (api.call("GET", "/v1/hosts", robot), "'hosts:read'"),
        (api.call("GET", "/v1/billing/syntec", robot), "'billing:read'"),
        (api.call("POST", "/v1/maintenance", robot, json=maintenance), "'maintenance:write'"),
        (api.call("POST", f"/v1/vps/{vps['vps']['id']}/stop", robot), "'vps:write'"),
        (api.call("GET", "/v1/customers", robot), "'customers:read'"),
        (api.call("GET", "/v1/tokens", robot), "automation tokens do not manage tokens"),
        (api.call("POST", "/v1/tokens", robot, json={"role": "support"}), "automation tokens do not manage tokens"),
    ]
    for response, words in refusals:
        assert_problem(response, 403, words)
    assert (count(api, Maintenance), count(api, Job), count(api, ApiToken)) == (0, jobs_before, 4)
    assert [v["id"] for v in api.call("GET", "/v1/vps", robot).json()["items"]] == [vps["vps"]["id"]]
    assert api.call("GET", f"/v1/jobs/{vps['job']['id']}", robot).status_code == 200
    assert api.call("POST", "/v1/billing/run", robot).status_code == 200
    # support keeps every staff right
    for method, path in (("GET", "/v1/hosts"), ("GET", "/v1/billing/syntec"), ("GET", "/v1/customers"),
                         ("GET", "/v1/maintenance"), ("GET", "/v1/tokens")):
        assert api.call(method, path, api.support).status_code == 200, path


def test_an_automation_token_needs_known_scopes(offline_api: Api) -> None:
    api = offline_api
    before = count(api, ApiToken)
    assert_problem(api.call("POST", "/v1/tokens", api.support, json={"role": "automation"}), 422, "at least one scope")
    assert_problem(api.call("POST", "/v1/tokens", api.support, json={"role": "automation", "scopes": ["vps:admin"]}),
                   422, "unknown scope 'vps:admin'")
    assert_problem(api.call("POST", "/v1/tokens", api.support, json={"role": "support", "scopes": ["vps:read"]}),
                   422, "only automation")
    assert count(api, ApiToken) == before
