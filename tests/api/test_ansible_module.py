"""The vpsctl.cloud.vps module run by the real ansible-playbook against the API served on loopback
(no worker, no hypervisor: the module does not wait for the create job): a missing VPS is ordered
from a plan through ``POST /v1/orders`` with its subscription and first invoice (R8.1-setup-fee),
once (found by name the second time); in check mode what the plan does not offer is refused
(R3-terms, R2-locations) and nothing is ordered; staff make one without an order only with
``unbilled_reason`` (``POST /v1/vps``), which a customer's token is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ansible_client import Ansible, require_ansible
from tests.conftest import Api
from tests.served import serving


@pytest.fixture
def ansible(offline_api: Api, tmp_path: Path) -> Iterator[Ansible]:
    require_ansible()
    with serving(offline_api.client.app) as port:
        yield Ansible(port, offline_api.alice, tmp_path)


def play(ansible: Ansible, *args: str, **extra: Any) -> tuple[bool, dict[str, Any], str]:
    """order.yml with these extra vars: whether it succeeded, the module's result, the output."""
    result_file = ansible.tmp / "result.json"
    result_file.unlink(missing_ok=True)
    done, _recap = ansible.play("order.yml", *args, ssh_public_key=ansible.public_key, result_file=result_file,
                                **extra)
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return done.returncode == 0, result, done.stdout + done.stderr


def orders(api: Api) -> list[dict[str, Any]]:
    return list(api.call("GET", "/v1/orders", api.support).json()["items"])


def test_a_missing_vps_is_ordered_from_a_plan_once(offline_api: Api, ansible: Ansible) -> None:
    api = offline_api
    published = api.call("POST", "/v1/plans", api.support, json={
        "code": "monthly", "name": "Monthly", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "terms": [1],
        "sites": ["Marseille"], "monthly_price_ht": "7.00", "setup_fee_ht": "3.00"})
    assert published.status_code == 201, published.text

    # check mode: what the plan does not offer is said, nothing ordered
    ok, _, output = play(ansible, "--check", vps_name="web", plan="monthly", term=12, site="Marseille")
    assert not ok and "not 12 (R3-terms)" in output
    ok, _, output = play(ansible, "--check", vps_name="web", plan="monthly", term=1)
    assert not ok and "choose the site (R2-locations)" in output
    ok, result, _ = play(ansible, "--check", vps_name="web", plan="monthly", term=1, site="Marseille")
    assert ok and result["changed"] and result["actions"] == ["order"] and result["order"] is None
    # the API's own refusal when not in check mode; no plan: no VPS
    ok, _, output = play(ansible, vps_name="web", plan="monthly", term=3, site="Marseille")
    assert not ok and "POST /v1/orders: 422" in output and "R3-terms" in output
    ok, _, output = play(ansible, vps_name="web")
    assert not ok and "needs a plan and a term" in output
    ok, _, output = play(ansible, vps_name="web", plan="monthly", term=1, vcpus=2)
    assert not ok and "mutually exclusive" in output
    assert orders(api) == [] and api.call("GET", "/v1/vps?name=web", api.alice).json()["items"] == []

    ok, result, output = play(ansible, vps_name="web", plan="monthly", term=1, site="Marseille")
    assert ok, output
    [order] = orders(api)
    assert result["changed"] and result["actions"] == ["order"]
    assert result["order"]["id"] == order["id"] and order["plan_code"] == "monthly" and order["site"] == "Marseille"
    assert result["invoice"]["number"] == order["invoice_number"]
    assert result["invoice"]["total_ht"] == "10.00"  # R8.1-setup-fee 3.00 and the first month's rent 7.00
    assert result["subscription"]["id"] == order["subscription_id"] and result["subscription"]["term_months"] == 1
    assert result["vps"]["id"] == order["vps_id"] and result["vps"]["status"] == "building"
    vps = api.call("GET", f"/v1/vps/{order['vps_id']}", api.alice).json()
    assert (vps["name"], vps["vcpus"], vps["memory_mib"], vps["disk_gib"]) == ("web", 1, 256, 2)

    # again: found by name, nothing ordered
    ok, result, output = play(ansible, vps_name="web", plan="monthly", term=1, site="Marseille")
    assert ok, output
    assert not result["changed"] and result["order"] is None and result["id"] == order["vps_id"]
    assert len(orders(api)) == 1


def test_only_staff_make_a_vps_without_an_order(offline_api: Api, ansible: Ansible) -> None:
    api = offline_api
    unbilled = {"unbilled_reason": "replaces a VPS lost in an incident", "customer": "alice", "vcpus": 1,
                "memory_mib": 256, "disk_gib": 2}
    # R8.1-setup-fee: a customer's token is refused by the API (403), nothing made
    ok, _, output = play(ansible, vps_name="free", **unbilled)
    assert not ok and "POST /v1/vps: 403" in output and "/v1/orders" in output
    assert api.call("GET", "/v1/vps?name=free", api.support).json()["items"] == []

    ansible.env["VPSCTL_TOKEN"] = api.support
    ok, _, output = play(ansible, vps_name="free", **{k: v for k, v in unbilled.items() if k != "customer"})
    assert not ok and "needs customer" in output
    ok, result, output = play(ansible, vps_name="free", **unbilled)
    assert ok, output
    assert result["changed"] and result["actions"] == ["create"] and result["order"] is None
    assert result["invoice"] is None and result["vps"]["customer"] == "alice"
    [vps] = api.call("GET", "/v1/vps?name=free", api.alice).json()["items"]
    assert vps["id"] == result["id"]
    assert orders(api) == []  # not billed
    ok, result, output = play(ansible, vps_name="free", **unbilled)
    assert ok and not result["changed"], output
