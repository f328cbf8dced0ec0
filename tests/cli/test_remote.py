"""``vpsctl vps|plan|job|profile`` against a real HTTP server (uvicorn on loopback) serving the fake
world (tests/api/fakeworld.py: the API, a real worker in a thread, the in-memory hypervisor).
The hypervisor of this world refuses to pause a guest, so that a suspend job fails for real."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import orchestrator.workflows  # noqa: F401  (registers the operations the worker runs)
from orchestrator.cli import app
from orchestrator.core.errors import HypervisorError
from tests.api.fakeworld import World, make_world
from tests.fakes import FakeDriver
from tests.served import serving
from tests.smtp import free_port


class PauseRefusing(FakeDriver):
    def suspend_domain(self, uuid: str) -> None:
        raise HypervisorError("the host refused to pause the guest")


@dataclass
class Served:
    world: World
    url: str
    config: Path

    def run(self, *args: str, token: str | None = None, url: str | None = None, input: str | None = None,
            **env: str | None) -> Any:
        """``vpsctl ARGS`` as alice (or ``token``) through VPSCTL_API_URL/VPSCTL_TOKEN."""
        environment: dict[str, str | None] = {
            "VPSCTL_API_URL": url if url is not None else self.url,
            "VPSCTL_TOKEN": token if token is not None else self.world.api.alice,
            "VPSCTL_CONFIG": str(self.config), "VPSCTL_PROFILE": None, "VPSCTL_OUTPUT": None,
            "COLUMNS": "200", **env}
        result = CliRunner().invoke(app, list(args), env=environment, input=input, catch_exceptions=False)
        assert "Traceback" not in result.output + result.stderr
        return result


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    world = make_world(tmp_path, "cli", driver=PauseRefusing)
    thread = world.worker.start_thread()
    try:
        with serving(world.api.client.app) as port:
            yield Served(world, f"http://127.0.0.1:{port}", tmp_path / "conf" / "config.toml")
    finally:
        world.worker.stop()
        thread.join(timeout=10)


def test_list_and_show_as_tables_and_json(served: Served) -> None:
    world = served.world
    listed = served.run("vps", "list", "--output", "json")
    assert listed.exit_code == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert [vps["id"] for vps in items] == [world.vps_id]
    assert items[0]["name"] == "held" and items[0]["status"] == "running"

    table = served.run("vps", "list")
    assert table.exit_code == 0
    assert world.vps_id in table.stdout and "held" in table.stdout and "running" in table.stdout

    shown = served.run("vps", "show", world.vps_id, "-o", "json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == world.api.call("GET", f"/v1/vps/{world.vps_id}", world.api.alice).json()
    detail = served.run("vps", "show", world.vps_id)
    assert "held" in detail.stdout and "ssh host key" in detail.stdout and "data disk" in detail.stdout

    # another customer sees none of it: an empty list, and a 404 for the VPS
    assert json.loads(served.run("vps", "list", "-o", "json", token=world.api.bob).stdout) == []


def test_errors_read_from_problem_documents(served: Served, tmp_path: Path) -> None:
    world = served.world
    hidden = served.run("vps", "show", world.vps_id, token=world.api.bob)
    assert hidden.exit_code == 1
    assert hidden.stdout == ""
    assert "error:" in hidden.stderr and "(HTTP 404)" in hidden.stderr

    bad_token = served.run("vps", "list", token="not-a-token")
    assert bad_token.exit_code == 1 and "(HTTP 401)" in bad_token.stderr

    # R5.1-change-order: a customer's resize is refused, the rule named
    refused = served.run("vps", "resize", world.vps_id, "--memory", "512")
    assert refused.exit_code == 1 and "(HTTP 422)" in refused.stderr and "change order" in refused.stderr
    assert "rule: R5.1-change-order" in refused.stderr

    # staff without a reason: the API's 422 names the rule
    no_reason = served.run("vps", "resize", world.vps_id, "--memory", "512", token=world.api.support)
    assert no_reason.exit_code == 1 and "(HTTP 422)" in no_reason.stderr
    assert "rule: R5.1-change-order" in no_reason.stderr

    # a status that does not allow the operation: 409 with the current status
    not_suspended = served.run("vps", "resume", world.vps_id)
    assert not_suspended.exit_code == 1 and "(HTTP 409)" in not_suspended.stderr
    assert "current status: running" in not_suspended.stderr

    # bad input checked by the API: its 422 detail says which field
    bad = served.run("vps", "create", "Not_A_Hostname", "--plan", world.api.plan(), "--term", "1", "--image", "tiny",
                     "--ssh-key", world.key)
    assert bad.exit_code == 1 and "(HTTP 422)" in bad.stderr and "name" in bad.stderr

    nobody = served.run("vps", "list", url=f"http://127.0.0.1:{free_port()}")
    assert nobody.exit_code == 1 and "the API did not answer" in nobody.stderr

    unnamed = served.run("vps", "list", VPSCTL_API_URL=None, VPSCTL_TOKEN=None)
    assert unnamed.exit_code == 1 and "VPSCTL_API_URL" in unnamed.stderr and "--profile" in unnamed.stderr


def test_profiles_are_private_and_never_print_the_token(served: Served) -> None:
    world, config = served.world, served.config
    no_env = {"VPSCTL_API_URL": None, "VPSCTL_TOKEN": None}
    added = served.run("profile", "add", "alice", "--url", served.url, input=world.api.alice + "\n", **no_env)
    assert added.exit_code == 0, added.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert served.run("profile", "add", "bob", "--url", served.url + "/", input=world.api.bob + "\n",
                      **no_env).exit_code == 0
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    listed = served.run("profile", "list", **no_env)
    assert "alice" in listed.stdout and "bob" in listed.stdout and served.url in listed.stdout
    assert world.api.alice not in listed.stdout + listed.stderr + added.stdout + added.stderr
    as_json = json.loads(served.run("profile", "list", "-o", "json", **no_env).stdout)
    assert as_json == [{"name": "alice", "url": served.url, "default": True},
                       {"name": "bob", "url": served.url, "default": False}]

    # a named profile is used; without one the environment wins over the default profile
    assert json.loads(served.run("vps", "list", "-o", "json", "--profile", "bob", **no_env).stdout) == []
    mine = json.loads(served.run("vps", "list", "-o", "json", **no_env).stdout)  # the default: alice
    assert [vps["id"] for vps in mine] == [world.vps_id]
    env_wins = served.run("vps", "list", "-o", "json", token=world.api.bob)
    assert json.loads(env_wins.stdout) == []
    assert json.loads(served.run("vps", "list", "-o", "json", VPSCTL_PROFILE="bob", **no_env).stdout) == []

    unknown = served.run("vps", "list", "--profile", "carol")
    assert unknown.exit_code == 1 and "no profile 'carol'" in unknown.stderr

    assert served.run("profile", "remove", "bob").exit_code == 0
    assert "bob" not in config.read_text() and world.api.bob not in config.read_text()
    assert served.run("profile", "remove", "bob").exit_code == 1

    bad_url = served.run("profile", "add", "x", "--url", "ftp://somewhere", input="t\n")
    assert bad_url.exit_code == 1 and "not an API address" in bad_url.stderr

    # a file others may read is refused (it holds tokens), nothing sent
    os.chmod(config, 0o644)
    exposed = served.run("vps", "list", "--profile", "alice")
    assert exposed.exit_code == 1 and f"chmod 600 {config}" in exposed.stderr



def test_wait_follows_jobs_and_fails_with_the_job(served: Served) -> None:
    world = served.world
    staff = world.api.support
    plan = world.api.plan(1, 256, 2)  # published by staff
    created = served.run("vps", "create", "made-by-cli", "--plan", plan, "--term", "1", "--image", "tiny",
                         "--ssh-key", world.key, "--wait", "-o", "json")
    assert created.exit_code == 0, created.stderr
    answer = json.loads(created.stdout)
    # R8.1-setup-fee: ordered, with its subscription and first invoice
    assert answer["order"]["plan_code"] == plan and answer["order"]["vps_id"] == answer["vps"]["id"]
    assert answer["subscription"]["id"] == answer["order"]["subscription_id"]
    assert answer["invoice"]["number"] == answer["order"]["invoice_number"]
    assert answer["job"]["status"] == "succeeded" and answer["job"]["kind"] == "create"
    assert answer["vps"]["status"] == "running" and answer["vps"]["name"] == "made-by-cli"
    new_id = answer["vps"]["id"]
    assert "define_domain done" in created.stderr and "finished succeeded" in created.stderr  # its events
    assert f"job {answer['job']['id']} (create) succeeded" in created.stderr
    newest = json.loads(served.run("vps", "list", "--limit", "1", "-o", "json").stdout)
    assert [vps["id"] for vps in newest] == [new_id]
    assert len(json.loads(served.run("vps", "list", "-o", "json").stdout)) == 2
    keyless = served.run("vps", "create", "nokey", "--plan", plan, "--term", "1", "--image", "tiny")
    assert keyless.exit_code == 2 and "--ssh-key" in keyless.stderr

    resized = served.run("vps", "resize", new_id, "--memory", "512", "--reason", "R5.1: cli test", "--wait",
                         token=staff)
    assert resized.exit_code == 0, resized.stderr
    assert "plan:" in resized.stderr and "memory_mib" in resized.stdout and "512" in resized.stdout
    assert world.api.call("GET", f"/v1/vps/{new_id}", staff).json()["memory_mib"] == 512

    # without --wait: the job is printed; job watch follows it to its end
    asked = served.run("vps", "resize", new_id, "--vcpus", "2", "--reason", "R5.1: cli test", "-o", "json",
                       token=staff)
    assert asked.exit_code == 0
    job_id = json.loads(asked.stdout)["job"]["id"]
    watched = served.run("job", "watch", job_id, "-o", "json")
    assert watched.exit_code == 0, watched.stderr
    assert json.loads(watched.stdout)["status"] == "succeeded"
    assert json.loads(served.run("job", "show", job_id, "-o", "json").stdout)["events"]

    # a failing job: exit status 1 and its error (as the caller may see it: staff see the host's words)
    failed = served.run("vps", "suspend", new_id, "--wait")
    assert failed.exit_code == 1
    assert "(suspend) failed: the operation did not complete" in failed.stderr
    suspend_id = world.api.call("GET", f"/v1/jobs?vps_id={new_id}&kind=suspend", staff).json()["items"][0]["id"]
    watched_failed = served.run("job", "watch", suspend_id, token=staff)
    assert watched_failed.exit_code == 1 and "refused to pause the guest" in watched_failed.stderr


def orders_of(world: World) -> list[dict[str, Any]]:
    return list(world.api.call("GET", "/v1/orders", world.api.support).json()["items"])


def test_plans_are_listed_and_a_vps_is_ordered_from_one(served: Served) -> None:
    world = served.world
    staff = world.api.support
    published = world.api.call("POST", "/v1/plans", staff, json={
        "code": "small", "name": "Small one", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "terms": [1, 12],
        "monthly_price_ht": "5.00", "setup_fee_ht": "20.00"})
    assert published.status_code == 201, published.text
    listed = served.run("plan", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    [small] = [p for p in json.loads(listed.stdout) if p["code"] == "small"]
    assert (small["vcpus"], small["memory_mib"], small["terms"], small["setup_fee_ht"]) == (1, 256, [1, 12], "20.00")
    table = served.run("plan", "list")
    assert table.exit_code == 0 and "Small one" in table.stdout and "20.00" in table.stdout
    assert "1, 12" in table.stdout

    # ordered as a table: the order, its subscription and its first invoice are shown
    orders_before = len(orders_of(world))
    ordered = served.run("vps", "create", "ordered", "--plan", "small", "--term", "12", "--image", "tiny",
                         "--ssh-key", world.key)
    assert ordered.exit_code == 0, ordered.stderr
    order, *older = orders_of(world)  # newest first
    assert len(older) == orders_before
    assert order["plan_code"] == "small" and order["term_months"] == 12
    for shown in (order["id"], order["invoice_number"], order["subscription_id"], order["vps_id"], order["job_id"]):
        assert shown in ordered.stdout
    assert "25.00 HT" in ordered.stdout  # R8.1-setup-fee 20.00 and the first month's rent 5.00 (R8.3-ht)
    assert f"follow it with: vpsctl job watch {order['job_id']}" in ordered.stderr
    vps = world.api.call("GET", f"/v1/vps/{order['vps_id']}", world.api.alice).json()
    assert (vps["name"], vps["vcpus"], vps["memory_mib"], vps["disk_gib"]) == ("ordered", 1, 256, 2)

    # a term the plan does not offer: the API's 422 names R3-terms, nothing is ordered
    refused = served.run("vps", "create", "other", "--plan", "small", "--term", "6", "--image", "tiny",
                         "--ssh-key", world.key)
    assert refused.exit_code == 1 and "(HTTP 422)" in refused.stderr and "R3-terms" in refused.stderr
    # no plan, or sizes with a plan: bad usage, nothing sent
    for usage in (["--term", "1"], ["--plan", "small"], ["--plan", "small", "--term", "1", "--vcpus", "2"]):
        bad = served.run("vps", "create", "other", "--image", "tiny", "--ssh-key", world.key, *usage)
        assert bad.exit_code == 2, bad.stderr
    assert "only with --unbilled" in bad.stderr
    assert len(orders_of(world)) == orders_before + 1

    # a customer cannot make a VPS without an order (R8.1-setup-fee): the API's 403
    unbilled = ["--unbilled", "--customer", "alice", "--vcpus", "1", "--memory", "256", "--disk", "2"]
    forbidden = served.run("vps", "create", "free", "--image", "tiny", "--ssh-key", world.key, *unbilled,
                           "--reason", "for free please")
    assert forbidden.exit_code == 1 and "(HTTP 403)" in forbidden.stderr and "/v1/orders" in forbidden.stderr
    # staff must say why
    reasonless = served.run("vps", "create", "free", "--image", "tiny", "--ssh-key", world.key, *unbilled,
                            token=staff)
    assert reasonless.exit_code == 2 and "--reason" in reasonless.stderr
    with_plan = served.run("vps", "create", "free", "--image", "tiny", "--ssh-key", world.key, *unbilled,
                           "--reason", "x", "--plan", "small", token=staff)
    assert with_plan.exit_code == 2 and "no --plan" in with_plan.stderr
    assert world.api.call("GET", "/v1/vps?name=free", staff).json()["items"] == []  # nothing was made
    made = served.run("vps", "create", "free", "--image", "tiny", "--ssh-key", world.key, *unbilled,
                      "--reason", "replacement for a lost VPS, ticket 42", "--wait", "-o", "json", token=staff)
    assert made.exit_code == 0, made.stderr
    answer = json.loads(made.stdout)
    assert answer["vps"]["name"] == "free" and answer["vps"]["customer"] == "alice"
    assert answer["job"]["status"] == "succeeded" and "order" not in answer and "invoice" not in answer
    assert len(orders_of(world)) == orders_before + 1  # not billed: no order

    # staff see a retired plan; customers no longer may order it
    assert world.api.call("PATCH", "/v1/plans/small", staff, json={"active": False}).status_code == 200
    assert "small" not in served.run("plan", "list").stdout
    retired = served.run("plan", "list", "--include-retired", token=staff)
    assert "small" in retired.stdout and "retired" in retired.stdout


def test_delete_and_reinstall_need_the_confirmation(served: Served) -> None:
    world = served.world
    before = world.jobs()
    for command in (["vps", "delete", world.vps_id], ["vps", "reinstall", world.vps_id, "--ssh-key", world.key]):
        refused = served.run(*command)
        assert refused.exit_code == 2 and "--confirm held" in refused.stderr
        wrong = served.run(*command, "--confirm", "other")
        assert wrong.exit_code == 2 and "not confirmed" in wrong.stderr
    assert world.jobs() == before  # nothing was asked

    reinstalled = served.run("vps", "reinstall", world.vps_id, "--ssh-key", world.key, "--confirm", "held",
                             "--wait")
    assert reinstalled.exit_code == 0, reinstalled.stderr
    deleted = served.run("vps", "delete", world.vps_id, "--yes", "--wait", "-o", "json")
    assert deleted.exit_code == 0, deleted.stderr
    assert json.loads(deleted.stdout)["job"]["kind"] == "delete"
    assert world.vps().status.value == "deleted"


def test_console_info_and_refusal(served: Served) -> None:
    world = served.world
    info = served.run("vps", "console", world.vps_id, "--info")
    assert info.exit_code == 0
    assert info.stdout.startswith(f"ws://127.0.0.1:{served.url.rsplit(':', 1)[1]}/v1/vps/{world.vps_id}/console")
    assert world.api.alice not in info.stdout
    # bob may not see it: the API's 404, not a console
    hidden = served.run("vps", "console", world.vps_id, token=world.api.bob, input="")
    assert hidden.exit_code == 1 and "(HTTP 404)" in hidden.stderr
