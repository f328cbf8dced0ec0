"""A stop whose guest takes longer to power off than a worker slot is held: the job gives its
slot back, comes back to look, and reports what happened (the guest shut itself down), having
pressed the power button once.  A fake guest that powers off one second after the button."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from orchestrator.core.errors import HypervisorError
from orchestrator.core.models import Job, JobEvent
from tests.api.fakeworld import make_world
from tests.fakes import FakeDriver, FakeHost


class SlowGuest(FakeDriver):
    pressed: list[float] = []

    def shutdown_domain(self, uuid: str) -> None:
        SlowGuest.pressed.append(time.monotonic())

    def domain(self, uuid: str):  # type: ignore[no-untyped-def]
        if SlowGuest.pressed and time.monotonic() - SlowGuest.pressed[0] > 1.0:
            super().destroy_domain(uuid)  # off, a second after the button
        return super().domain(uuid)


def run_to_its_end(world: Any, job_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        world.worker.run_once()
        with Session(world.api.engine) as session:
            job = session.get(Job, job_id)
            if job is not None and job.status in ("succeeded", "failed"):
                return
        time.sleep(0.05)


def test_a_stop_that_waits_gives_its_slot_back_and_says_the_guest_shut_down(tmp_path: Path) -> None:
    SlowGuest.pressed = []

    def slow(uri: str, host: FakeHost) -> FakeDriver:
        return SlowGuest(uri, host)

    world = make_world(tmp_path, "slow", slow, job_wait_hold_seconds=0.2, job_wait_poll_seconds=0.1)
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/stop", world.api.alice)
    assert asked.status_code == 202, asked.text
    job_id = asked.json()["job"]["id"]
    run_to_its_end(world, job_id)
    with Session(world.api.engine) as session:
        job = session.get(Job, job_id)
        events = session.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()
    assert job is not None and job.status == "succeeded", job
    assert ("power_off", "waiting") in {(e.step, e.status) for e in events}  # it gave its slot back
    done = [e.message for e in events if e.status == "done"]
    assert "shut down by the guest" in done, done
    assert len(SlowGuest.pressed) == 1  # the button, once
    assert world.vps().status == "stopped"


class DeafWhileBooting(FakeDriver):
    """A guest that misses the first press of the power button (still booting: its ACPI handler
    is not running yet), then powers off a moment after the next."""

    pressed: list[float] = []

    def shutdown_domain(self, uuid: str) -> None:
        DeafWhileBooting.pressed.append(time.monotonic())

    def domain(self, uuid: str):  # type: ignore[no-untyped-def]
        if len(DeafWhileBooting.pressed) >= 2 and time.monotonic() - DeafWhileBooting.pressed[1] > 0.2:
            super().destroy_domain(uuid)
        return super().domain(uuid)


def test_a_guest_that_missed_the_power_button_hears_it_again_before_being_forced_off(tmp_path: Path) -> None:
    DeafWhileBooting.pressed = []

    def deaf(uri: str, host: FakeHost) -> FakeDriver:
        return DeafWhileBooting(uri, host)

    world = make_world(tmp_path, "deaf", deaf, job_wait_hold_seconds=0.2, job_wait_poll_seconds=0.1,
                       stop_timeout_seconds=8.0, shutdown_retry_seconds=0.5)
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/stop", world.api.alice)
    assert asked.status_code == 202, asked.text
    job_id = asked.json()["job"]["id"]
    run_to_its_end(world, job_id)
    with Session(world.api.engine) as session:
        events = session.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()
    done = [e.message for e in events if e.status == "done"]
    assert "shut down by the guest" in done, done  # not "forced off after 8 s"
    first, second = DeafWhileBooting.pressed[:2]
    assert second - first >= 0.5
    assert world.vps().status == "stopped"


class OffAsPressedAgain(FakeDriver):
    """A guest that misses the first press, and is powering off by itself when the button is
    pressed again: libvirt refuses that press (the domain is no longer running)."""

    pressed: list[float] = []

    def shutdown_domain(self, uuid: str) -> None:
        OffAsPressedAgain.pressed.append(time.monotonic())
        if len(OffAsPressedAgain.pressed) >= 2:
            super().destroy_domain(uuid)
            raise HypervisorError("Requested operation is not valid: domain is not running")


def test_a_press_refused_because_the_guest_just_went_off_is_a_clean_shutdown(tmp_path: Path) -> None:
    OffAsPressedAgain.pressed = []

    def off(uri: str, host: FakeHost) -> FakeDriver:
        return OffAsPressedAgain(uri, host)

    world = make_world(tmp_path, "racing", off, job_wait_hold_seconds=0.2, job_wait_poll_seconds=0.1,
                       stop_timeout_seconds=8.0, shutdown_retry_seconds=0.5)
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/stop", world.api.alice)
    job_id = asked.json()["job"]["id"]
    run_to_its_end(world, job_id)
    with Session(world.api.engine) as session:
        job = session.get(Job, job_id)
        events = session.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()
    assert job is not None and job.status == "succeeded", job.error if job else None
    assert "shut down by the guest" in [e.message for e in events if e.status == "done"]
    assert len(OffAsPressedAgain.pressed) == 2 and world.vps().status == "stopped"
