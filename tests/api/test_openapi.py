"""The OpenAPI document is true and complete (api/openapi.py): readable unique operationIds, one
problem schema for every error an operation answers, Location on what it creates, strict bodies,
the server's limits; and a client generated from it works against the server."""

from __future__ import annotations

import collections
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.openapi import PROBLEM_MEDIA
from tests.conftest import Api

OPERATION_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")  # verb_object, snake_case


@pytest.fixture
def document(offline_api: Api) -> dict[str, Any]:
    response = offline_api.call("GET", "/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_operation_ids_are_readable_and_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) > 90
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []
    assert [i for i in ids if not OPERATION_ID.match(i) or len(i) > 40] == []
    named = {(m, p): op["operationId"] for m, p, op in operations(document)}
    assert named["POST", "/v1/vps"] == "create_vps"
    assert named["GET", "/v1/vps/{vps_id}/events"] == "list_vps_events"


def test_summaries_descriptions_and_tags(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        assert len(op["summary"].split()) >= 2, (method, path, op["summary"])
        assert op.get("description"), (method, path)
        assert op.get("tags"), (method, path)
    described = {tag["name"]: tag.get("description") for tag in document["tags"]}
    used = {tag for _, _, op in operations(document) for tag in op["tags"]}
    assert used <= set(described)
    assert all(described[name] and described[name] != name for name in used)


def test_schema_titles_are_unique_and_validation_error_is_gone(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    titles = collections.Counter(schema.get("title", name) for name, schema in schemas.items())
    assert [t for t, n in titles.items() if n > 1] == []
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert "HTTPValidationError" not in str(document["paths"])
    assert [name for name, schema in schemas.items() if not schema.get("description")] == []
    assert schemas["VpsCreate"]["description"] == "The body of `create_vps`."


def test_every_error_is_a_problem_declared_where_it_can_happen(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "errors", "rule", "current_status"} <= set(
        problem["properties"])
    for method, path, op in operations(document):
        responses = op["responses"]
        errors = {int(code) for code in responses if int(code) >= 400}
        for code in errors:
            content = responses[str(code)]["content"]
            assert list(content) == [PROBLEM_MEDIA], (method, path, code)
            assert content[PROBLEM_MEDIA]["schema"] == {"$ref": "#/components/schemas/Problem"}
        if path in ("/healthz",):
            assert errors == set()
            continue
        assert {401, 403, 429} <= errors, (method, path)
        if "{" in path:
            assert 404 in errors, (method, path)
        if method == "POST":
            assert {409, 422} <= errors, (method, path)
        if "requestBody" in op:
            assert {413, 422} <= errors, (method, path)
    assert "Retry-After" in document["paths"]["/v1/vps"]["get"]["responses"]["429"]["headers"]


def test_creates_declare_location_and_send_it(offline_api: Api, document: dict[str, Any]) -> None:
    declared = {(m, p) for m, p, op in operations(document)
                for code in ("201", "202") if "Location" in op["responses"].get(code, {}).get("headers", {})}
    assert ("POST", "/v1/vps") in declared and ("POST", "/v1/vps/{vps_id}/start") in declared
    assert ("POST", "/v1/incidents") in declared and ("POST", "/v1/tokens") in declared
    assert ("POST", "/v1/orders") in declared
    assert all(m != "GET" for m, _ in declared)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3mRtXdLqX9vU0aH9k8sYb0o8pVbQfK1m6GqJm0Vx4c a@b"
    created = offline_api.unbilled("alice", json={
        "name": "web1", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]})
    assert created.status_code == 202, created.text
    job = created.json()["job"]["id"]
    assert created.headers["location"] == f"/v1/jobs/{job}"
    assert offline_api.call("GET", created.headers["location"], offline_api.alice).json()["id"] == job
    ordered = offline_api.order(offline_api.alice, json={
        "name": "web2", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key]})
    assert ordered.status_code == 202, ordered.text
    assert ordered.headers["location"] == f"/v1/vps/{ordered.json()['vps']['id']}"
    assert offline_api.call("GET", ordered.headers["location"], offline_api.alice).json()["name"] == "web2"
    token = offline_api.call("POST", "/v1/tokens", offline_api.alice, json={"label": "ci"})
    assert token.status_code == 201, token.text
    assert token.headers["location"] == f"/v1/tokens/{token.json()['id']}"
    assert offline_api.call("GET", token.headers["location"], offline_api.alice).status_code == 200


def test_method_not_allowed_says_which_are(offline_api: Api) -> None:
    response = offline_api.call("PATCH", "/v1/vps", offline_api.alice)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_MEDIA
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert response.json()["instance"] == "/v1/vps"


def test_a_body_that_is_not_utf8_is_an_invalid_request(offline_api: Api) -> None:
    response = offline_api.call("POST", "/v1/vps", offline_api.alice, content=b'{"name": "\xe9t\xe9"}',
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA
    problem = response.json()
    assert problem["type"] == "/problems/invalid-request" and problem["title"] == "Invalid request"
    assert "UTF-8" in problem["detail"] and problem["instance"] == "/v1/vps"


@pytest.mark.parametrize(("path", "token", "body", "field"), [
    # a date is an ISO string: 0 (1970-01-01) and 10**9 (2001-09-09, within the allowed years) are refused
    ("/v1/subscriptions/s1/breach-notices", "support",
     {"breach": "x", "letter_sent_on": 0, "cure_by": "2030-01-01"}, "letter_sent_on"),
    ("/v1/subscriptions/s1/breach-notices", "support",
     {"breach": "x", "letter_sent_on": 10**9, "cure_by": "2030-01-01"}, "letter_sent_on"),
    ("/v1/maintenance", "support", {"starts_at": 2_000_000_000, "reason": "x"}, "starts_at"),
    # a boolean is true or false: not 1, 0, "true" nor "yes"
    ("/v1/vps/v1/stop", "alice", {"force": 1}, "force"),
    ("/v1/vps/v1/reinstall", "alice", {"ssh_keys": ["k"], "confirm_data_loss": 1}, "confirm_data_loss"),
    ("/v1/vps/v1/restore", "alice", {"backup_id": "b", "confirm_data_loss": "true"}, "confirm_data_loss"),
    ("/v1/incidents", "support", {"vps_id": "v", "malfunction": "x", "description": "d", "force_majeure": "yes"},
     "force_majeure"),
    # an integer is a number without a fraction (2.0 is one, as JSON Schema says): not "2", not true
    ("/v1/vps/v1/disks", "support", {"size_gib": "2", "reason": "x"}, "size_gib"),
    ("/v1/vps/v1/resize", "support", {"memory_mib": True}, "memory_mib"),
    # money is a decimal string within its digits: not a binary float, not too precise
    ("/v1/change-orders/c1/approve", "support", {"rent_ht": 12.5}, "rent_ht"),
    ("/v1/change-orders/c1/approve", "support", {"rent_ht": "12.505"}, "rent_ht"),
    ("/v1/change-orders/c1/approve", "support", {"rent_ht": "12345678901.00"}, "rent_ht"),
])
def test_bodies_are_strict(offline_api: Api, path: str, token: str, body: dict[str, Any], field: str) -> None:
    """Each of these is accepted by lax validation (and would then be a 404 or worse: a date of
    1970); the strict check refuses it first, naming the field."""
    response = offline_api.call("POST", path, getattr(offline_api, token), json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/invalid-request"
    assert any(error["loc"][:2] == ["body", field] for error in problem["errors"]), problem


def test_an_undeclared_query_parameter_is_refused(offline_api: Api) -> None:
    response = offline_api.call("GET", "/v1/jobs?vps=abc", offline_api.alice)  # the filter is vps_id
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"loc": ["query", "vps"], "msg": "unknown query parameter"}]
    assert offline_api.call("GET", "/v1/jobs?vps_id=abc&limit=5", offline_api.alice).json()["items"] == []
    twice = offline_api.call("GET", "/v1/jobs?status=queued&status=failed", offline_api.alice)  # one status
    assert twice.status_code == 422 and twice.json()["errors"] == [{"loc": ["query", "status"],
                                                                    "msg": "given more than once"}]
    kept = offline_api.call("DELETE", "/v1/vps/v1?confirm_data_loss=true&keep_backups=a&keep_backups=b",
                            offline_api.alice)  # a list: repeated
    assert kept.status_code == 404, kept.text


@pytest.mark.parametrize("path", ["/v1/backups", "/v1/jobs", "/v1/vps", "/v1/tokens"])
def test_an_instant_in_the_query_is_an_iso_string_never_a_number(offline_api: Api, path: str) -> None:
    """Lax validation reads ``since=-2382804002`` as seconds since 1970 (found by schemathesis: a
    200 where the document, ``format: date-time``, allows no number)."""
    for value in ("-2382804002", "0", "1.5e9"):
        response = offline_api.call("GET", f"{path}?since={value}", offline_api.support)
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [{"loc": ["query", "since"],
                                              "msg": "an ISO 8601 date or instant, not a number"}]
    fine = offline_api.call("GET", f"{path}?since=2030-01-01T00:00:00Z", offline_api.support)
    assert fine.status_code == 200, fine.text


def test_iso_strings_numbers_as_text_and_enums_still_pass(offline_api: Api) -> None:
    """Strict is not stricter than the schema: ISO dates and instants, money as a decimal string,
    enum values are read as before (these reach the handler: 404 for the missing ids)."""
    ok = [("/v1/subscriptions/s1/breach-notices", {"breach": "x", "letter_sent_on": "2030-01-01",
                                                   "cure_by": "2030-01-20"}),
          ("/v1/change-orders/c1/approve", {"rent_ht": "12.50"}),
          ("/v1/change-orders/c1/approve", {"rent_ht": "0.05", "fee_ht": "0"}),
          ("/v1/vps/v1/suspend", {"reason": "abuse"}),
          ("/v1/vps/v1/stop", {"force": True}),
          ("/v1/vps/v1/resize", {"memory_mib": 512.0})]
    for path, body in ok:
        response = offline_api.call("POST", path, offline_api.support, json=body)
        assert response.status_code == 404, (path, response.text)


def test_the_servers_limits_are_in_the_schema(offline_api: Api, document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    limits = offline_api.settings.limits
    assert schemas["VpsCreate"]["properties"]["disk_gib"]["maximum"] == limits.max_disk_gib
    assert schemas["VpsCreate"]["properties"]["vcpus"]["maximum"] == limits.max_vcpus
    assert schemas["VpsCreate"]["properties"]["ssh_keys"]["maxItems"] == limits.max_ssh_keys
    assert schemas["DiskBody"]["properties"]["size_gib"]["maximum"] == limits.max_disk_gib
    reasons = schemas["SuspendBody"]["properties"]["reason"]["anyOf"][0]["enum"]
    assert "nonpayment" not in reasons and "customer" in reasons  # nonpayment: the workflow's only
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3mRtXdLqX9vU0aH9k8sYb0o8pVbQfK1m6GqJm0Vx4c a@b"
    over = offline_api.unbilled("alice", json={
        "name": "big", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": limits.max_disk_gib + 1,
        "ssh_keys": [key]})
    assert over.status_code == 422 and "disk_gib" in over.json()["detail"]
    refused = offline_api.call("POST", "/v1/vps/v1/suspend", offline_api.support, json={"reason": "nonpayment"})
    assert refused.status_code == 422


def test_main_bodies_have_examples(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("VpsCreate", "ResizeBody", "DiskBody", "ChangeOrderBody", "Problem"):
        assert schemas[name].get("examples"), name


def generate_client(document_path: Path, out: Path) -> Path:
    """``openapi-python-client`` run on the document; the package's directory."""
    binary = Path(sys.executable).with_name("openapi-python-client")
    env = {**os.environ, "PATH": f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff
    result = subprocess.run([str(binary), "generate", "--path", str(document_path), "--output-path", str(out),
                             "--meta", "none"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout, result.stdout
    return out


def test_a_generated_client_works(offline_api: Api, document: dict[str, Any], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A client generated from the document by openapi-python-client (every operation kept, no
    warning) lists, creates and reads VPS, and parses a 422 and a 404 into its Problem model."""
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(document))
    generate_client(source, tmp_path / "vpsctl_client")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("vpsctl_client")]:
        del sys.modules[name]
    client_module = importlib.import_module("vpsctl_client")
    create_vps, list_vps, get_vps, start_vps = (importlib.import_module(f"vpsctl_client.api.{tag}.{name}")
                                                for tag, name in (("vps", "create_vps"), ("vps", "list_vps"),
                                                                  ("vps", "get_vps"), ("operations", "start_vps")))
    models = importlib.import_module("vpsctl_client.models")
    generated = {p.stem for p in (tmp_path / "vpsctl_client" / "api").rglob("*.py") if p.stem != "__init__"}
    assert {op["operationId"] for _, _, op in operations(document)} <= generated  # none dropped

    app = offline_api.client.app
    client = client_module.AuthenticatedClient(base_url="http://testserver", token=offline_api.support)
    client.set_httpx_client(TestClient(app, headers={"Authorization": f"Bearer {offline_api.support}"}))
    unbilled = {"customer": "alice", "reason": "test: a VPS made without an order"}

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3mRtXdLqX9vU0aH9k8sYb0o8pVbQfK1m6GqJm0Vx4c a@b"
    created = create_vps.sync_detailed(client=client, body=models.VpsCreate(
        name="gen1", image="tiny", vcpus=1, memory_mib=256, disk_gib=2, ssh_keys=[key], **unbilled))
    assert created.status_code == 202, created.content
    assert isinstance(created.parsed, models.VpsJobOut) and created.parsed.vps.name == "gen1"
    assert created.headers["location"] == f"/v1/jobs/{created.parsed.job.id}"

    page = list_vps.sync(client=client, limit=10)
    assert isinstance(page, models.PageVpsOut) and [v.name for v in page.items] == ["gen1"]
    assert isinstance(get_vps.sync(client=client, vps_id=created.parsed.vps.id), models.VpsOut)

    refused = create_vps.sync_detailed(client=client, body=models.VpsCreate(
        name="gen2", image="tiny", vcpus=1, memory_mib=256, disk_gib=offline_api.settings.limits.max_disk_gib + 1,
        ssh_keys=[key], **unbilled))
    assert refused.status_code == 422
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.type_ == "/problems/invalid-request" and "disk_gib" in refused.parsed.detail

    missing = start_vps.sync_detailed(client=client, vps_id="no-such-vps")
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem) and missing.parsed.status == 404
    assert missing.parsed.instance == "/v1/vps/no-such-vps/start"


def test_a_replayed_answer_says_where_too(offline_api: Api) -> None:
    """An answer the guard replays for an Idempotency-Key carries the same Location."""
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3mRtXdLqX9vU0aH9k8sYb0o8pVbQfK1m6GqJm0Vx4c a@b"
    order = {"name": "once", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [key],
             "customer": "alice", "reason": "test: a VPS made without an order"}
    first, again = (offline_api.call("POST", "/v1/vps", offline_api.support, json=order,
                                     headers={"Idempotency-Key": "order-1"}) for _ in range(2))
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"] == f"/v1/jobs/{first.json()['job']['id']}"


def test_a_refused_request_with_a_huge_id_is_audited_not_a_500(offline_api: Api) -> None:
    """Found by schemathesis: the audit trail read a customer id past 64 bits from the path of a
    refused request and the database refused it (500)."""
    response = offline_api.call("PUT", f"/v1/customers/{2**64}/quota", offline_api.support, json={"vps": 1})
    assert response.status_code == 422, response.text


def test_the_routes_are_walked_once_and_again_only_when_one_is_added() -> None:
    """Walking FastAPI's routes builds every route's context anew: the answer is kept per
    application (a replayed answer looks its route up on every request)."""
    from fastapi import FastAPI

    from api.openapi import api_routes

    app = FastAPI()

    @app.get("/one")
    def one() -> None: ...

    first = api_routes(app)
    assert [route.path for route in first] == ["/one"]
    assert api_routes(app) is first  # kept, not walked again

    @app.get("/two")
    def two() -> None: ...

    assert [route.path for route in api_routes(app)] == ["/one", "/two"]
