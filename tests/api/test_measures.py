"""No sequence of a client's calls gets around a staff measure (orchestrator/engine/measures.py).

For each measure — a staff suspension (and the same once staff stopped the VPS), a payment
default (with the VPS suspended, and with the VPS already off), a cut-off, a terminated
subscription — every operation a client can call, in every order of two, run by a real worker
(the operations' own code, on the in-memory hypervisor of tests/fakes.py), and the measure still
holds afterwards: the VPS does not run, or, cut off, its link stays down.

A refused call must change nothing at all (no job, the same VPS record, the same hypervisor
state): that is asserted for every one.  So a pair whose first call is refused is its second
call alone, checked as a first call; every pair whose first call is accepted is run from the
measure's world (restored from a snapshot of the database and the hypervisor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.models import VpsStatus
from orchestrator.hypervisor import DomainState
from tests.api.fakeworld import CLIENT_CALLS, World, make_world
from tests.api.money import paris, subscribe

Holds = Callable[[World], bool]


def off(world: World) -> bool:
    dom = world.host.domains.get(world.vps_id)
    return dom is None or dom.state != DomainState.running


def staff_suspended(world: World) -> bool:
    vps = world.vps()
    return off(world) and (vps.status == VpsStatus.deleted or vps.suspended_by == "support")


def link_down(world: World) -> bool:
    dom = world.host.domains.get(world.vps_id)
    return world.vps().cut_off and (dom is None or dom.state == DomainState.shutoff or not dom.link_up)


def impose_suspension(world: World) -> None:
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/suspend", world.api.support, json={"reason": "abuse"})
    assert asked.status_code == 202
    world.run()


def impose_suspension_then_stop(world: World) -> None:
    impose_suspension(world)
    assert world.api.call("POST", f"/v1/vps/{world.vps_id}/stop", world.api.support,
                          json={"force": True}).status_code == 202
    world.run()


def impose_default(world: World, stopped_first: bool = False) -> None:
    api = world.api
    if stopped_first:
        assert world.call("stop") == 202
        world.run()
    sub = subscribe(api, world.vps_id)
    invoice = sub["invoice"]["id"]
    from orchestrator.core import clock

    clock.travel_to(paris(2026, 5, 20, 10, 0))  # a week after the order: the first invoice is overdue
    declared = api.call("POST", f"/v1/invoices/{invoice}/default", api.support)
    assert declared.status_code == 201, declared.text
    world.run()


def impose_cutoff(world: World) -> None:
    assert world.api.call("POST", f"/v1/vps/{world.vps_id}/cutoff", world.api.support,
                          json={"reason": "abuse"}).status_code == 202
    world.run()


def impose_termination(world: World) -> None:
    sub = subscribe(world.api, world.vps_id)["subscription"]
    assert world.api.call("POST", f"/v1/subscriptions/{sub['id']}/terminate", world.api.support,
                          json={"reason": "insolvency"}).status_code == 202
    world.run()


MEASURES: dict[str, tuple[Callable[[World], None], Holds]] = {
    "staff suspension": (impose_suspension, staff_suspended),
    "staff suspension, then stopped by staff": (impose_suspension_then_stop, staff_suspended),
    "payment default": (impose_default, off),
    "payment default, VPS already off": (lambda w: impose_default(w, stopped_first=True), off),
    "cut-off": (impose_cutoff, link_down),
    "terminated subscription": (impose_termination, off),
}


@pytest.fixture
def build(tmp_path: Path, clock: Any) -> Iterator[Callable[[str], World]]:
    """Make a world (tests/api/fakeworld.py), then impose the measure."""
    worlds: list[World] = []

    def make(measure: str) -> World:
        clock.travel_to(paris(2026, 5, 13, 10, 0))
        world = make_world(tmp_path, f"w{len(worlds)}", unbilled=True)
        worlds.append(world)
        impose, holds = MEASURES[measure]
        impose(world)
        assert holds(world), f"{measure} is not in place"
        return world

    yield make
    for world in worlds:
        world.api.client.close()


@pytest.mark.parametrize("measure", list(MEASURES))
def test_no_two_calls_of_the_client_lift_a_measure(build: Callable[[str], World], measure: str) -> None:
    holds = MEASURES[measure][1]
    world = build(measure)
    imposed = world.snapshot()
    for first in CLIENT_CALLS:
        world.restore(imposed)
        before = world.state()
        status = world.call(first)
        world.run()
        if status not in (201, 202):
            assert status in (403, 404, 409, 422), (first, status)
            assert world.state() == before, f"{first} was refused ({status}) but changed something"
            continue  # the same world as before: its pairs are the second calls alone, checked here too
        assert holds(world), f"{measure}: lifted by {first}"
        after_first = world.snapshot()
        for second in CLIENT_CALLS:
            world.restore(after_first)
            before = world.state()
            status = world.call(second)
            world.run()
            if status not in (201, 202):
                assert world.state() == before, f"{second} after {first} was refused but changed something"
            assert holds(world), f"{measure}: lifted by {first} then {second}"
