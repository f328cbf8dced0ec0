"""GET /v1/events (api/routers/events.py): the event log as server-sent events, served by uvicorn
on loopback.  Read some, leave, come back with Last-Event-ID: exactly the events that followed,
none lost or repeated, then the new ones as they happen; R7-confidential: a customer's stream
never shows another customer's events; heartbeats while idle; the stream ends with the server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from api.routers import events
from orchestrator.core.auth import create_token, hash_token, revoke_token
from orchestrator.core.models import ApiToken, Customer, Event, Role
from tests.api.fakeworld import World, make_world
from tests.served import serving


def frames(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Each frame of an event stream: its fields, and ``comment`` for comment lines."""
    frame: dict[str, Any] = {}
    for line in response.iter_lines():
        if line == "":
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            frame.setdefault("comment", []).append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            frame[name] = value.removeprefix(" ")


def read_events(port: int, token: str, count: int, headers: dict[str, str] | None = None,
                query: str = "", timeout: float = 20,
                on_comment: Callable[[str], None] = lambda _comment: None) -> list[tuple[int, str]]:
    """The first ``count`` events of a stream (id, type); then the client leaves.  Each comment
    line (the opening one, heartbeats) is given to ``on_comment`` as it comes."""
    got: list[tuple[int, str]] = []
    with httpx.stream("GET", f"http://127.0.0.1:{port}/v1/events{query}", timeout=timeout,
                      headers={"Authorization": f"Bearer {token}", **(headers or {})}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in frames(response):
            for comment in frame.get("comment", []):
                on_comment(comment)
            if "id" in frame:
                assert str(frame["data"]).startswith("{")
                got.append((int(frame["id"]), str(frame["event"])))
                if len(got) == count:
                    break
    return got


def recorded(world: World, customer: str | None, after: int = 0) -> list[tuple[int, str]]:
    with Session(world.api.engine) as session:
        query = select(Event).where(col(Event.id) > after).order_by(col(Event.id))
        if customer is not None:
            owner = session.exec(select(Customer.id).where(Customer.name == customer)).one()
            query = query.where(Event.customer_id == owner)
        return [(e.id or 0, e.type) for e in session.exec(query).all()]


def test_a_stream_resumed_with_last_event_id_loses_and_repeats_nothing(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "BATCH", 3)  # the log read in several batches
    world = make_world(tmp_path, "stream", events_poll_seconds=0.1)
    api = world.api
    history = recorded(world, "alice")
    assert len(history) > 6
    with serving(api.client.app) as port:
        first = read_events(port, api.alice, 4, query="?after=0")
        assert first == history[:4]
        rest = read_events(port, api.alice, len(history) - 4, headers={"Last-Event-ID": str(first[-1][0])})
        assert rest == history[4:]

        # Live: events recorded while the client listens arrive in order, after the last one read.
        live: list[tuple[int, str]] = []
        reader = threading.Thread(target=lambda: live.extend(read_events(
            port, api.alice, 4, headers={"Last-Event-ID": str(history[-1][0])})))
        reader.start()
        time.sleep(0.5)
        assert api.call("POST", f"/v1/vps/{world.vps_id}/stop", api.alice, json={"force": True}).status_code == 202
        world.run()
        reader.join(timeout=20)
        assert not reader.is_alive()
        assert live == recorded(world, "alice", history[-1][0])[:4]
        assert [t for _i, t in live] == ["job.requested", "job.started", "vps.status_changed", "job.succeeded"]

        # ?after= resumes the same way; Last-Event-ID wins over it.
        assert read_events(port, api.alice, 2, query=f"?after={history[1][0]}") == history[2:4]
        assert read_events(port, api.alice, 1, query="?after=0",
                           headers={"Last-Event-ID": str(history[2][0])}) == history[3:4]
        bad = httpx.get(f"http://127.0.0.1:{port}/v1/events", headers={
            "Authorization": f"Bearer {api.alice}", "Last-Event-ID": "nope"})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert httpx.get(f"http://127.0.0.1:{port}/v1/events").status_code == 401


def test_a_customer_stream_shows_only_their_own_events_and_staff_see_all(tmp_path: Path) -> None:
    world = make_world(tmp_path, "mine", events_poll_seconds=0.1, events_heartbeat_seconds=0.3)
    api = world.api
    with serving(api.client.app) as port:
        ordered = api.order(api.bob, json={
            "name": "bobs", "image": "tiny", "vcpus": 1, "memory_mib": 256, "disk_gib": 2, "ssh_keys": [world.key]})
        assert ordered.status_code == 202, ordered.text
        world.run()
        alice, bob, everyone = recorded(world, "alice"), recorded(world, "bob"), recorded(world, None)
        assert bob and alice and len(everyone) == len(alice) + len(bob)
        assert read_events(port, api.bob, len(bob), query="?after=0") == bob
        assert read_events(port, api.alice, len(alice), query="?after=0") == alice
        assert read_events(port, api.support, len(everyone), query="?after=0") == everyone
        # After bob's events, alice's stream has nothing of his: the server read the log past them
        # and, finding nothing of hers, sent heartbeats only (a keep-alive follows a read that found
        # nothing); it waits for her next one.
        seen: list[tuple[int, str]] = []
        beats = threading.Semaphore(0)
        reader = threading.Thread(target=lambda: seen.extend(read_events(
            port, api.alice, 1, headers={"Last-Event-ID": str(alice[-1][0])}, on_comment=lambda _c: beats.release())))
        reader.start()
        for _ in range(3):  # the stream's opening comment, then two heartbeats
            assert beats.acquire(timeout=20)
        assert seen == []
        assert api.call("POST", f"/v1/vps/{world.vps_id}/stop", api.alice, json={"force": True}).status_code == 202
        reader.join(timeout=20)
        assert seen == [recorded(world, "alice", alice[-1][0])[0]]
        assert seen[0][0] > bob[-1][0]


def test_an_idle_stream_sends_heartbeats_and_ends_when_the_server_shuts_down(tmp_path: Path) -> None:
    world = make_world(tmp_path, "idle", events_heartbeat_seconds=0.3, events_poll_seconds=0.1)
    api = world.api
    comments: list[str] = []
    beats = threading.Semaphore(0)
    ended = threading.Event()

    def listen(port: int) -> None:
        with httpx.stream("GET", f"http://127.0.0.1:{port}/v1/events", timeout=30,
                          headers={"Authorization": f"Bearer {api.alice}"}) as response:
            for frame in frames(response):
                comments.extend(frame.get("comment", []))
                if "keep-alive" in frame.get("comment", []):
                    beats.release()
        ended.set()

    with serving(api.client.app) as port:
        reader = threading.Thread(target=listen, args=(port,), daemon=True)
        reader.start()
        assert beats.acquire(timeout=20) and beats.acquire(timeout=20)
        assert comments.count("keep-alive") >= 2 and not [c for c in comments if c not in ("stream open",
                                                                                           "keep-alive")]
        assert not ended.is_set()
        shutting = time.monotonic()
    assert ended.wait(5), "the stream did not end with the server"
    assert time.monotonic() - shutting < 5


def test_a_stream_ends_when_its_token_is_revoked(tmp_path: Path) -> None:
    world = make_world(tmp_path, "revoked", events_heartbeat_seconds=0.3, events_poll_seconds=0.1)
    api = world.api
    with Session(api.engine) as session:
        token = create_token(session, Role.customer, "alice")
        record = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
    ended = threading.Event()
    beats = threading.Semaphore(0)

    def listen(port: int) -> None:
        with httpx.stream("GET", f"http://127.0.0.1:{port}/v1/events", timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status_code == 200
            for frame in frames(response):
                if "keep-alive" in frame.get("comment", []):
                    beats.release()
        ended.set()

    with serving(api.client.app) as port:
        reader = threading.Thread(target=listen, args=(port,), daemon=True)
        reader.start()
        # A heartbeat is sent after the server checked the token again and found it valid.
        assert beats.acquire(timeout=20)
        assert not ended.is_set()
        with Session(api.engine) as session:
            revoke_token(session, record, "tests")
            session.commit()
        assert ended.wait(5), "the stream outlived its token"
        again = httpx.get(f"http://127.0.0.1:{port}/v1/events", headers={"Authorization": f"Bearer {token}"})
        assert again.status_code == 401


def test_a_client_that_leaves_ends_its_stream_on_the_server(tmp_path: Path) -> None:
    world = make_world(tmp_path, "leave", events_heartbeat_seconds=0.3, events_poll_seconds=0.1)
    with serving(world.api.client.app) as port:
        assert events.open_streams == 0
        with httpx.stream("GET", f"http://127.0.0.1:{port}/v1/events", timeout=10,
                          headers={"Authorization": f"Bearer {world.api.alice}"}) as response:
            next(response.iter_lines())
            assert events.open_streams == 1
        deadline = time.monotonic() + 5
        while events.open_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events.open_streams == 0
