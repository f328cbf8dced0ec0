"""Load: many clients at once against the real server on loopback, reads mixed with jobs.

The server as it is run: uvicorn serving the application factory (``api.app:create_app``) in
several worker processes (``--workers``), and separate ``vpsctl worker`` processes claiming the
jobs, all on one database: a PostgreSQL schema of its own (made and dropped here) on the server of
``$VPSCTL_TEST_POSTGRES_URL``, or a SQLite file (``LOAD_DATABASE=sqlite``).  The database is
seeded first: customers, one token per client, 10,000 VPS recorded running, one host.

What the jobs run against: the host is a libvirt ``test:///`` host (libvirt's test driver, inside
each worker process, one node file holding a running domain for each VPS that gets jobs), reached
through the real driver code (orchestrator/hypervisor/libvirt_driver.py): no QEMU, no libvirtd.
The in-memory driver of tests/fakes.py cannot serve here: a ``vpsctl worker`` process always
reaches hosts through libvirt (compute/hosts.Drivers), and there is no URI that names a fake.
The test driver keeps its domains in each process's memory and knows no network filters, so the
jobs are suspend and resume, whose steps call libvirt without redefining the domain (a reboot,
stop or start defines the domain first, with its network filters); each is idempotent in the
driver, so it does not matter which worker process ran the one before.  Every job goes through the
whole path: the Guard, the request's transaction, the queue, a worker's claim, its lease and
steps, the VPS's new status.  The periodic duties (reconciler, billing run, traffic, capacity,
filter checks) are off: each worker's test driver has its own idea of the domains.

Each client (one asyncio task, one token of its own, its customer shared with other clients) first
calls ``GET /v1/vps/{id}``, every client at once (as they would all come back after an outage;
reported apart), then, with a random pause between calls (``LOAD_THINK_MS``, mean), ``GET
/v1/vps/{id}``, the first page of ``GET /v1/vps``, ``GET /v1/jobs``, ``GET /v1/jobs/{id}``, ``GET
/v1/invoices``, and on one of its two own VPS ``POST /suspend`` or ``/resume`` with an
``Idempotency-Key`` (one in ten sent again at once: the repeat must answer the same job, or 409
while the Guard has not yet recorded the first answer, which it does after sending it).  A 409 for
a status that does not allow the call yet (the client's previous job on that VPS not finished) is
expected too: both counted and listed apart.  Any 5xx, transport error, other status or wrong
replay is an error.  At the end the queue is drained (bounded) and every job answered is looked up:
it exists, succeeded, ran once (one attempt, its step started once), and no other job was made.
The clients run in this process and share the machine with the server: the CPU each part used is
reported beside the latencies.

    python -m bench.load_bench     # LOAD_CLIENTS=200 LOAD_SECONDS=60; writes docs/benchmarks.md (Load)

Settings (environment): LOAD_CLIENTS, LOAD_SECONDS, LOAD_VPS, LOAD_CUSTOMERS, LOAD_API_WORKERS,
LOAD_JOB_WORKERS, LOAD_THINK_MS, LOAD_DRAIN_SECONDS, LOAD_DATABASE (postgresql | sqlite),
LOAD_WRITE (0: do not write docs/benchmarks.md).  Exit code 1 when a target is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bench.report import OUTPUTS
from orchestrator.core.accounts import create_customer
from orchestrator.core.auth import issue_token
from orchestrator.core.db import make_engine
from orchestrator.core.models import Host, Job, JobEvent, JobStatus, Role, Vps, VpsStatus
from orchestrator.core.settings import Settings
from tests.conftest import base_settings

ROOT = Path(__file__).resolve().parent.parent
ACTION_VPS_PER_CLIENT = 2
REPLAY_SHARE = 0.1  # job calls repeated at once with the same Idempotency-Key
CALL_TIMEOUT = 60.0  # s: a call unanswered this long is an error (the server's 30 s pool timeout fits in)
# Targets (ms): p99 with 200 clients (about 40 requests a second) on a 2-core machine.
TARGET_P99_MS = {"GET /v1/vps/{id}": 250.0, "GET /v1/vps?limit=50": 500.0}
# What a client calls, and how often (weights).
MIX = (("GET /v1/vps/{id}", 30), ("GET /v1/vps?limit=50", 20), ("GET /v1/jobs", 10), ("GET /v1/jobs/{id}", 5),
       ("GET /v1/invoices", 5), ("job", 30))
JOB_STEPS = {"suspend": "pause", "resume": "unpause"}
OPENING = "GET /v1/vps/{id}, every client at once at the start"
# The latency targets look at the calls sent from this long after the start: every client's first
# call at the same instant takes the server a few seconds to answer (reported apart), and the calls
# sent meanwhile queue behind it (about 6 s in all, seen on this 2-core machine).
SETTLE_SECONDS = 10.0
# The Guard's answer to a key repeated while the first request's answer is not yet recorded
# (api/guard.py), which it records only after the answer was sent: a repeat sent at once may get it.
STILL_ANSWERED = "a request with this Idempotency-Key is still being answered"


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Config:
    clients: int = 200
    seconds: float = 60.0
    vps: int = 10_000
    customers: int = 20
    api_workers: int = 3
    job_workers: int = 2
    think_ms: float = 5000.0
    drain_seconds: float = 120.0
    database: str = "postgresql"

    @classmethod
    def from_env(cls) -> Config:
        return cls(clients=_int("LOAD_CLIENTS", 200), seconds=float(os.environ.get("LOAD_SECONDS", 60)),
                   vps=_int("LOAD_VPS", 10_000), customers=_int("LOAD_CUSTOMERS", 20),
                   api_workers=_int("LOAD_API_WORKERS", 3), job_workers=_int("LOAD_JOB_WORKERS", 2),
                   think_ms=float(os.environ.get("LOAD_THINK_MS", 5000)),
                   drain_seconds=float(os.environ.get("LOAD_DRAIN_SECONDS", 120)),
                   database=os.environ.get("LOAD_DATABASE", "postgresql"))


@dataclass
class Seeded:
    tokens: list[str]  # one per client
    readable: list[list[str]]  # per customer: the ids of its VPS
    actions: list[list[str]]  # per client: its own VPS that get jobs


@dataclass
class Tally:
    """What the clients saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # route -> ms
    sent: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # route -> when (perf_counter)
    opening_answered: list[float] = field(default_factory=list)  # when each opening call was answered
    began: float = 0.0  # when the clients started (perf_counter)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    expected: Counter[tuple[str, int, str]] = field(default_factory=Counter)  # route, status, detail
    errors: list[str] = field(default_factory=list)
    jobs: dict[str, tuple[str, str]] = field(default_factory=dict)  # job id -> (vps id, kind)
    replays: int = 0
    last_kind: dict[str, str] = field(default_factory=dict)  # vps id -> kind of its last job answered
    busy: float = 0.0  # share of the machine's CPU time busy during the run (every process)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the run, by whom
    job_seconds: list[float] = field(default_factory=list)  # each job's time from asked to finished
    logged: Counter[str] = field(default_factory=Counter)  # exceptions in the processes' logs
    connections: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # Connections.summary


@dataclass
class Result:
    config: Config
    elapsed: float
    tally: Tally
    drained_in: float
    accounted: int  # jobs answered, found and run as they should
    problems: list[str]  # what is not accounted for
    database: str

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.tally.latencies.values())

    @property
    def errors(self) -> list[str]:
        return self.tally.errors


def steady(tally: Tally, route: str) -> list[float]:
    """The latencies of ``route``'s calls sent ``SETTLE_SECONDS`` or more after the clients started:
    the steady load, without the opening burst and the calls that queued behind it."""
    return [ms for ms, sent in zip(tally.latencies.get(route, []), tally.sent.get(route, []), strict=True)
            if sent >= tally.began + SETTLE_SECONDS]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the database --------------------------------------------------------------------------------

@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """The URL of an empty database of the bench's own: a new PostgreSQL schema (dropped after),
    or a new SQLite file."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'vpsctl.db'}"
        return
    given = os.environ.get("VPSCTL_TEST_POSTGRES_URL")
    if not given:
        raise SystemExit("the load bench runs on PostgreSQL: set VPSCTL_TEST_POSTGRES_URL "
                         "(scripts/postgres.sh start prints it), or LOAD_DATABASE=sqlite")
    base = sa.make_url(given)
    schema = f"load_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def settings_for(tmp: Path, url: str) -> Settings:
    return base_settings(
        tmp, database_url=url, run_worker=False, verify_guest_ssh=False,
        # each worker's test driver has its own domains: nothing periodic looks at the host
        reconcile_seconds=0, filter_check_seconds=0, capacity_seconds=0, traffic_seconds=0,
        billing_run_seconds=0,
        # the jobs' timings as shipped (the tests' are shorter)
        job_lease_seconds=30.0, job_heartbeat_seconds=5.0, job_poll_seconds=0.2,
        # clients call faster than the default limit allows one token
        api_rate_per_minute=1_000_000)


def node_file(tmp: Path, ids: list[str]) -> Path:
    """A libvirt test driver node: a running domain for each VPS that gets jobs."""
    domains = "".join(f"<domain type='test'><name>vps-{vps_id}</name><uuid>{vps_id}</uuid><memory>262144</memory>"
                      f"<vcpu>1</vcpu><os><type>hvm</type></os></domain>" for vps_id in ids)
    path = tmp / "node.xml"
    path.write_text(f"<node><cpu><mhz>2000</mhz><model>i686</model><active>2</active><nodes>1</nodes>"
                    f"<sockets>1</sockets><cores>2</cores><threads>1</threads></cpu><memory>16777216</memory>"
                    f"{domains}</node>")
    return path


def seed(settings: Settings, config: Config, tmp: Path) -> Seeded:
    """Customers, one token per client, ``config.vps`` VPS recorded running on one test:/// host;
    each client gets two VPS of its customer of its own for its jobs."""
    engine = make_engine(settings)  # the schema, migrated once before the processes start
    try:
        actions = [[str(uuid.uuid4()) for _ in range(ACTION_VPS_PER_CLIENT)] for _ in range(config.clients)]
        node = node_file(tmp, [vps_id for ids in actions for vps_id in ids])
        with Session(engine) as session:
            customers = [create_customer(session, f"load{c}", f"load{c}@example.test", "en", actor="bench")
                         for c in range(config.customers)]
            host = Host(name="load", uri=f"test://{node}", site="Marseille", domain_type="test", vcpus=64,
                        memory_mib=1 << 20, disk_gib=100_000)
            session.add(host)
            session.flush()
            tokens = [issue_token(session, Role.customer, customers[i % config.customers], label=f"client{i}",
                                  actor="bench").token for i in range(config.clients)]
            # (id, customer, name): each client's own VPS first, then the rest, customer after customer
            rows = [(vps_id, client % config.customers, f"c{client}")
                    for client, ids in enumerate(actions) for vps_id in ids]
            rows += [(str(uuid.uuid4()), n % config.customers, f"v{n}") for n in range(max(0, config.vps - len(rows)))]
            readable: list[list[str]] = [[] for _ in customers]
            for vps_id, owner, _ in rows:
                readable[owner].append(vps_id)
            # one multi-row INSERT: a record as the model makes it (its defaults), once, then varied;
            # made a second apart, the first the longest ago
            template = Vps(host_id=host.id, image="tiny", vcpus=1, memory_mib=256, disk_gib=2,
                           status=VpsStatus.running, customer_id=0, name="v").model_dump()
            made = template["created_at"] - timedelta(seconds=len(rows))
            session.execute(sa.insert(Vps), [
                {**template, "id": vps_id, "customer_id": customers[owner].id, "name": name,
                 "created_at": made + timedelta(seconds=n), "updated_at": made + timedelta(seconds=n)}
                for n, (vps_id, owner, name) in enumerate(rows)])
            session.commit()
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")  # as autovacuum would, long before 60 s of traffic
                conn.commit()
        return Seeded(tokens, readable, actions)
    finally:
        engine.dispose()


# --- the processes -------------------------------------------------------------------------------

@dataclass
class Served:
    base: str  # the API's URL
    api: int  # the uvicorn supervisor's pid (its workers are its children)
    workers: list[int]  # the vpsctl worker processes' pids

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the API processes and by the job worker processes."""
        return tree_cpu(self.api), sum(tree_cpu(pid) for pid in self.workers)


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its living descendants (/proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # ended meanwhile
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return own + sum(tree_cpu(int(child)) for child in children)


APPLICATION = "vpsctl-load-"  # + api | worker: the PostgreSQL connections' application_name
PARTS = {"api": "the API processes", "worker": "the job worker processes"}
POOL = 15  # SQLAlchemy's QueuePool as orchestrator/core/db.make_engine makes it: 5, and 10 more


def named(env: dict[str, str], part: str) -> dict[str, str]:
    """``env`` with the database URL naming its connections after ``part`` (PostgreSQL)."""
    url = env.get("VPSCTL_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        return env
    return {**env, "VPSCTL_DATABASE_URL": sa.make_url(url).update_query_dict(
        {"application_name": APPLICATION + part}).render_as_string(hide_password=False)}


class Connections(threading.Thread):
    """Samples, every half second, the bench's PostgreSQL connections by part and state
    (pg_stat_activity): how many are open, and how many idle in a transaction (held by a request
    or a job between two of its queries, or after its last one)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url)
        self.stop = threading.Event()
        self.samples: list[Counter[tuple[str, str]]] = []

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stop.wait(0.5):
                rows = conn.execute(sa.text(
                    "SELECT application_name, state FROM pg_stat_activity WHERE application_name LIKE :name"),
                    {"name": APPLICATION + "%"}).all()
                conn.rollback()
                self.samples.append(Counter((str(name).removeprefix(APPLICATION), str(state)) for name, state in rows))

    def summary(self) -> dict[str, tuple[float, float, int]]:
        """Per part: mean open, mean idle in transaction, most open at once."""
        self.stop.set()
        self.join()
        self.engine.dispose()
        found: dict[str, tuple[float, float, int]] = {}
        for part in ("api", "worker"):
            open_ = [sum(n for (who, _), n in sample.items() if who == part) for sample in self.samples]
            idle = [sample[(part, "idle in transaction")] for sample in self.samples]
            if open_:
                found[part] = (sum(open_) / len(open_), sum(idle) / len(idle), max(open_))
        return found


@contextmanager
def serving(settings: Settings, config: Config, tmp: Path) -> Iterator[Served]:
    """uvicorn (``config.api_workers`` processes) and ``config.job_workers`` ``vpsctl worker``
    processes, each one ready (its start-up logged); every process started here is stopped here."""
    env = dict(os.environ)
    env.update(settings.as_environment())
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []
    logs = [tmp / "api.log", *(tmp / f"worker{n}.log" for n in range(config.job_workers))]
    try:
        started.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(config.api_workers), "--log-level", "info",
             "--no-access-log", "--backlog", "4096"],
            cwd=ROOT, env=named(env, "api"), stdout=subprocess.DEVNULL, stderr=logs[0].open("wb"),
            start_new_session=True))
        for log in logs[1:]:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "orchestrator.cli", "worker"], cwd=ROOT, env=named(env, "worker"),
                stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True))
        deadline = time.monotonic() + 180

        def ready() -> bool:
            text = [log.read_text(errors="replace") for log in logs]
            return (text[0].count("Application startup complete") >= config.api_workers
                    and all(" started with " in worker for worker in text[1:]))

        while not ready():
            for process in started:
                if process.poll() is not None:
                    tails = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)
                    raise RuntimeError(f"{process.args!r} ended ({process.returncode}):\n{tails}")
            if time.monotonic() > deadline:
                raise RuntimeError("the API's and the job workers' start-up not done within 180 s")
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/healthz", timeout=10).status_code == 200
        yield Served(base, started[0].pid, [process.pid for process in started[1:]])
    finally:
        # Each was started in a session (a process group) of its own: uvicorn's worker processes
        # are in their supervisor's, and go with it.
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=60)  # answers in progress finish first
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # whatever of its group is left


# --- the clients ---------------------------------------------------------------------------------

async def client(http: httpx.AsyncClient, number: int, seeded: Seeded, config: Config, tally: Tally,
                 stop_at: list[float]) -> None:
    rng = random.Random(number)
    customer = number % config.customers
    headers = {"Authorization": f"Bearer {seeded.tokens[number]}"}
    readable, own = seeded.readable[customer], seeded.actions[number]
    state = {vps_id: "running" for vps_id in own}  # what this client last made of each
    my_jobs: list[str] = []
    routes, weights = zip(*MIX, strict=True)

    async def call(route: str, method: str, path: str, body: Any = None,
                   extra: dict[str, str] | None = None) -> httpx.Response | None:
        began = time.perf_counter()
        try:
            answer = await http.request(method, path, json=body, headers={**headers, **(extra or {})})
        except httpx.HTTPError as exc:
            tens = 10 * int((time.perf_counter() - began) // 10)  # grouped by ten seconds
            tally.errors.append(f"{route}: {type(exc).__name__} after {tens} to {tens + 10} s")
            return None
        tally.latencies[route].append((time.perf_counter() - began) * 1000)
        tally.sent[route].append(began)
        tally.statuses[route][answer.status_code] += 1
        return answer

    def unexpected(route: str, answer: httpx.Response) -> None:
        try:  # a problem+json's title and detail (its instance names the object: not kept)
            problem = answer.json()
            said = f"{problem.get('title')}: {problem.get('detail')}" if isinstance(problem, dict) else answer.text
        except ValueError:
            said = answer.text
        tally.errors.append(f"{route}: {answer.status_code} {said[:200]}")

    # every client at once, as they would all come back after an outage
    answer = await call(OPENING, "GET", f"/v1/vps/{own[0]}")
    tally.opening_answered.append(time.perf_counter())
    if answer is not None and answer.status_code != 200:
        unexpected(OPENING, answer)
    while time.perf_counter() < stop_at[0]:
        await asyncio.sleep(min(rng.uniform(0, 2 * config.think_ms) / 1000, stop_at[0] - time.perf_counter()))
        if time.perf_counter() >= stop_at[0]:
            break
        route = rng.choices(routes, weights)[0]
        if route == "GET /v1/vps/{id}":
            answer = await call(route, "GET", f"/v1/vps/{rng.choice(readable)}")
        elif route == "GET /v1/vps?limit=50":
            answer = await call(route, "GET", "/v1/vps?limit=50")
            if answer is not None and answer.status_code == 200 and len(answer.json()["items"]) != min(
                    50, len(readable)):
                tally.errors.append(f"{route}: {len(answer.json()['items'])} items")
        elif route == "GET /v1/jobs":
            answer = await call(route, "GET", "/v1/jobs?limit=50")
        elif route == "GET /v1/jobs/{id}":
            if not my_jobs:
                continue
            answer = await call(route, "GET", f"/v1/jobs/{rng.choice(my_jobs)}")
        elif route == "GET /v1/invoices":
            answer = await call(route, "GET", "/v1/invoices")
        else:
            vps_id = rng.choice(own)
            kind = "suspend" if state[vps_id] == "running" else "resume"
            route = f"POST /v1/vps/{{id}}/{kind}"
            path, body = f"/v1/vps/{vps_id}/{kind}", ({"reason": "customer"} if kind == "suspend" else None)
            key = {"Idempotency-Key": uuid.uuid4().hex}
            answer = await call(route, "POST", path, body, key)
            if answer is None:
                continue
            if answer.status_code == 409:  # busy with its previous job
                tally.expected[(route, 409, str(answer.json().get("detail", ""))[:90])] += 1
                continue
            if answer.status_code != 202:
                unexpected(route, answer)
                continue
            job_id = answer.json()["job"]["id"]
            if job_id in tally.jobs:
                tally.errors.append(f"{route}: job {job_id} answered twice without a replay")
            tally.jobs[job_id] = (vps_id, kind)
            tally.last_kind[vps_id] = kind
            my_jobs.append(job_id)
            state[vps_id] = "suspended" if kind == "suspend" else "running"
            if rng.random() < REPLAY_SHARE:
                replay = await call(route + " (repeated key)", "POST", path, body, key)
                if replay is None:
                    continue
                if replay.status_code == 409 and replay.json().get("detail") == STILL_ANSWERED:
                    tally.expected[(route + " (repeated key)", 409, STILL_ANSWERED)] += 1
                elif (replay.status_code == 202 and replay.headers.get("idempotent-replayed") == "true"
                        and replay.json()["job"]["id"] == job_id):
                    tally.replays += 1
                else:
                    unexpected(route + " (repeated key)", replay)
            continue
        if answer is not None and answer.status_code != 200:
            unexpected(route, answer)


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (every process, every core): /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


async def drive(served: Served, seeded: Seeded, config: Config) -> tuple[Tally, float]:
    tally = Tally()
    # An idle connection is dropped by the client before uvicorn's 5 s keep-alive timeout closes it
    # (both at 5 s, a call could be sent just as the server closes the connection: a ReadError).
    limits = httpx.Limits(max_connections=config.clients, max_keepalive_connections=config.clients,
                          keepalive_expiry=4.0)
    async with httpx.AsyncClient(base_url=served.base, limits=limits, timeout=CALL_TIMEOUT) as http:
        began, busy, (api, workers), own = time.perf_counter(), busy_cpu_seconds(), served.cpu(), time.process_time()
        stop_at, tally.began = [began + config.seconds], began
        tasks = [asyncio.create_task(client(http, n, seeded, config, tally, stop_at)) for n in range(config.clients)]
        # bounded: a call still unanswered this long after the end is cut off (an error)
        done, late = await asyncio.wait(tasks, timeout=config.seconds + CALL_TIMEOUT + 10)
        for task in done:
            task.result()  # a client's own failure is the bench's, raised here
        for task in late:
            task.cancel()
            tally.errors.append("a client's call was still unanswered at the end: cut off")
        elapsed = time.perf_counter() - began
        tally.busy = (busy_cpu_seconds() - busy) / elapsed / (os.cpu_count() or 1)
        api_after, workers_after = served.cpu()
        tally.cpu = {"API processes": api_after - api, "job worker processes": workers_after - workers,
                     "clients (this process)": time.process_time() - own}
        return tally, elapsed


# --- the jobs, accounted for ---------------------------------------------------------------------

def account(settings: Settings, tally: Tally, drain_seconds: float) -> tuple[float, int, list[str]]:
    """Wait (bounded) until no job answered is queued or running; then every job answered exists,
    succeeded, ran once (one attempt, its step started once), no other job exists, and each VPS
    that got jobs has the status of its last one."""
    engine = make_engine(settings, upgrade=False)
    problems: list[str] = []
    began = time.monotonic()
    try:
        while True:
            with Session(engine) as session:
                pending = session.exec(select(sa.func.count()).select_from(Job).where(
                    col(Job.status).in_([JobStatus.queued, JobStatus.running]))).one()
            if not pending or time.monotonic() - began > drain_seconds:
                break
            time.sleep(0.25)
        drained = time.monotonic() - began
        with Session(engine) as session:
            jobs = {job.id: job for job in session.exec(select(Job))}
            started = Counter(session.exec(select(JobEvent.job_id).where(JobEvent.status == "started")).all())
            statuses = dict(session.exec(select(Vps.id, Vps.status).where(
                col(Vps.id).in_(list(tally.last_kind))).order_by(Vps.id)).all()) if tally.last_kind else {}
        if pending:
            problems.append(f"{pending} jobs still queued or running after {drain_seconds:.0f} s")
        accounted = 0
        for job_id, (vps_id, kind) in tally.jobs.items():
            job = jobs.get(job_id)
            if job is None:
                problems.append(f"job {job_id} ({kind}) answered 202 but is not recorded")
            elif job.status != JobStatus.succeeded:
                problems.append(f"job {job_id} ({kind}): {job.status} {job.error or ''}")
            elif job.vps_id != vps_id or job.kind != kind:
                problems.append(f"job {job_id}: {job.kind} of {job.vps_id}, answered as {kind} of {vps_id}")
            elif job.attempts != 1 or started[job_id] != 1 or job.steps_done != [JOB_STEPS[kind]]:
                problems.append(f"job {job_id} ({kind}): {job.attempts} attempts, {started[job_id]} steps "
                                f"started, steps done {job.steps_done}")
            else:
                accounted += 1
                if job.created_at and job.finished_at:
                    tally.job_seconds.append((job.finished_at - job.created_at).total_seconds())
        for job_id in sorted(set(jobs) - set(tally.jobs)):
            problems.append(f"job {job_id} ({jobs[job_id].kind}) was made but never answered")
        for vps_id, kind in tally.last_kind.items():
            want = VpsStatus.suspended if kind == "suspend" else VpsStatus.running
            if statuses.get(vps_id) != want:
                problems.append(f"VPS {vps_id}: {statuses.get(vps_id)} after its last job, a {kind}")
    finally:
        engine.dispose()
    return drained, accounted, problems


def run(config: Config) -> Result:
    """Seed, serve, drive the clients, account for the jobs; every process and the schema gone after."""
    with tempfile.TemporaryDirectory(prefix="vpsctl-load-") as name:
        tmp = Path(name)
        with database(config.database, tmp) as url:
            settings = settings_for(tmp, url)
            began = time.monotonic()
            seeded = seed(settings, config, tmp)
            progress(f"seeded {config.vps:,} VPS and {config.clients} tokens in {time.monotonic() - began:.1f} s")
            began = time.monotonic()
            with serving(settings, config, tmp) as served:
                progress(f"serving after {time.monotonic() - began:.1f} s; {config.clients} clients for "
                         f"{config.seconds:.0f} s")
                sampler = Connections(url) if config.database == "postgresql" else None
                if sampler:
                    sampler.start()
                tally, elapsed = asyncio.run(drive(served, seeded, config))
                if sampler:
                    tally.connections = sampler.summary()
                drained, accounted, problems = account(settings, tally, config.drain_seconds)
                progress(f"{len(tally.jobs)} jobs drained in {drained:.1f} s")
                began = time.monotonic()
            progress(f"stopped in {time.monotonic() - began:.1f} s")
            kind = "PostgreSQL " + postgres_version(url) if config.database == "postgresql" else "SQLite"
        tally.logged = logged_exceptions(tmp)
        if tally.errors or problems or tally.logged:  # the processes' logs, kept to read what went wrong
            kept = Path(tempfile.mkdtemp(prefix="vpsctl-load-logs-"))
            for log in tmp.glob("*.log"):
                shutil.copy(log, kept / log.name)
            progress(f"the server's and workers' logs are in {kept}")
    return Result(config, elapsed, tally, drained, accounted, problems, kind)


EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout)\w*): (.*)$")


def logged_exceptions(directory: Path) -> Counter[str]:
    """The exceptions the server and the workers logged (their tracebacks' last lines), by kind."""
    found: Counter[str] = Counter()
    for log in directory.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            match = EXCEPTION.match(line)
            if match:
                found[f"{log.stem}: {match.group(1)}: {match.group(2)[:110]}"] += 1
    return found


def progress(line: str) -> None:
    print(f"load_bench: {line}", file=sys.stderr, flush=True)


# --- the report ----------------------------------------------------------------------------------

def postgres_version(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SHOW server_version").scalar()).split()[0]
    finally:
        engine.dispose()


def machine() -> str:
    """The commit measured (and whether the tree had changes), the CPU, cores, memory, kernel and
    load average, read from the system."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # what the benchmarks write (docs/benchmarks.md and its plots) is no change to the code measured
    excluded = [f":(exclude,glob){path}" for path in OUTPUTS]
    if git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded):
        commit += " (with uncommitted changes)"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / (1 << 20)
    import libvirt

    lib = libvirt.getVersion()
    return (f"commit {commit}; {os.cpu_count()} CPUs ({cpu}), {mem_gib:.0f} GiB, Linux {os.uname().release}, "
            f"load average {os.getloadavg()[0]:.2f} before the run; libvirt {lib // 1000000}.{lib // 1000 % 1000}."
            f"{lib % 1000} (test driver)")


def targets_missed(result: Result) -> list[str]:
    missed = []
    if result.errors:
        missed.append(f"{len(result.errors)} errors")
    if result.problems:
        missed.append(f"{len(result.problems)} jobs not accounted for")
    if result.tally.logged:
        missed.append(f"{sum(result.tally.logged.values())} exceptions logged by the server or the workers")
    if not result.tally.jobs:
        missed.append("no job was started")
    for route, bound in TARGET_P99_MS.items():
        p99 = percentile(steady(result.tally, route), 0.99)
        if not p99 <= bound:
            missed.append(f"{route} p99 from {SETTLE_SECONDS:.0f} s on {p99:.0f} ms over {bound:.0f} ms")
    return missed


def report(result: Result, source: str) -> list[str]:
    config, tally = result.config, result.tally
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for route in sorted(tally.latencies):
        values = tally.latencies[route]
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses[route].items()))
        later_calls = steady(tally, route) if route != OPENING else []
        later = f"{len(later_calls)} | {percentile(later_calls, 0.99):.1f}" if later_calls else "- | -"
        rows.append(f"| {route} | {len(values)} | {percentile(values, 0.5):.1f} | {percentile(values, 0.99):.1f} | "
                    f"{max(values):.1f} | {later} | {codes} |")
    expected = [f"- {n} x {status} on `{route}`: {detail}" for (route, status, detail), n in
                sorted(tally.expected.items(), key=lambda item: -item[1])] or ["- none"]
    missed = targets_missed(result)
    errors = [f"- {n} x {error}" for error, n in Counter(result.errors).most_common()]
    problems = [f"- {problem}" for problem in result.problems[:10]] + (
        [f"- ... and {len(result.problems) - 10} more"] if len(result.problems) > 10 else [])
    return [
        f"Measured {when} by `python -m bench.load_bench` on {source}; {result.database}.",
        "",
        f"{config.clients} clients for {config.seconds:.0f} s (each its own customer token, {config.customers} "
        f"customers), their first calls all at the same instant, then a random pause of 0 to "
        f"{2 * config.think_ms:.0f} ms between calls; {config.vps:,} VPS "
        f"recorded; uvicorn with {config.api_workers} worker processes, {config.job_workers} `vpsctl worker` "
        "processes. Jobs ran against a libvirt `test:///` host (libvirt's test driver in each worker "
        "process, through the real driver code: no QEMU); suspend and resume only, the periodic duties off "
        "(see the module's docstring for why).",
        "",
        f"{result.requests:,} requests in {result.elapsed:.1f} s: {result.requests / result.elapsed:.0f} per "
        f"second; {len(result.errors)} errors (5xx, transport, or an unexpected answer). The machine's "
        f"cores were {100 * tally.busy:.0f}% busy during the run (every process: the server, the clients, "
        "PostgreSQL, and whatever else ran); CPU used during the run: " +
        ", ".join(f"{who} {seconds:.1f} s" for who, seconds in tally.cpu.items()) +
        (f" ({1000 * tally.cpu['API processes'] / result.requests:.1f} ms of the API's per request)."
         if result.requests and "API processes" in tally.cpu else "."),
        "",
        *([("PostgreSQL connections, sampled every 0.5 s: " + "; ".join(
            f"{PARTS[part]}: {mean:.1f} open on average ({most} at most), {idle:.1f} of them idle in a transaction"
            for part, (mean, idle, most) in tally.connections.items()) +
            f" (an API process's pool holds at most {POOL} connections)."), ""] if tally.connections else []),
        f"The opening burst was answered {max(tally.opening_answered, default=tally.began) - tally.began:.1f} s "
        f"after it was sent. The calls sent from {SETTLE_SECONDS:.0f} s on (the steady load, not queued behind "
        "the burst) have a p99 column of their own, on which the latency targets are checked.",
        "",
        "| route | calls | p50 (ms) | p99 (ms) | max (ms) | "
        f"calls from {SETTLE_SECONDS:.0f} s on | their p99 (ms) | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Expected refusals: a suspend or resume sent before the client's previous job on that VPS finished "
        "(the status does not allow it yet), a key repeated before its first answer was recorded:",
        "",
        *expected,
        "",
        f"Jobs: {len(tally.jobs)} answered 202 (each with its job id), {tally.replays} repeats of a key "
        f"answered the same job; after the run the queue drained in {result.drained_in:.1f} s; "
        f"{result.accounted} accounted for: "
        "each recorded, succeeded, one attempt, its step started once, no other job made, every VPS in the "
        f"status of its last job. From asked to finished (`finished_at - created_at`): p50 "
        f"{percentile(tally.job_seconds, 0.5) * 1000:.0f} ms, p99 {percentile(tally.job_seconds, 0.99) * 1000:.0f} ms" +
        (f"; {1000 * tally.cpu['job worker processes'] / len(tally.jobs):.0f} ms of the job workers' CPU per job "
         "(their idle polling included)." if tally.jobs and "job worker processes" in tally.cpu else "."),
        *(["", "Errors:", "", *errors] if errors else []),
        *(["", "Exceptions in the server's and workers' logs (api: uvicorn's processes; workerN: `vpsctl worker`):",
           "", *(f"- {n} x {line}" for line, n in tally.logged.most_common(10))] if tally.logged else []),
        *(["", "Jobs not accounted for:", "", *problems] if problems else []),
        "",
        f"Targets: zero errors, every job accounted for, p99 from {SETTLE_SECONDS:.0f} s on of " +
        " and ".join(f"`{route}` under {bound:.0f} ms" for route, bound in TARGET_P99_MS.items()) + ": " +
        ("met." if not missed else "NOT met (" + "; ".join(missed) + ")."),
    ]


def write(lines: list[str]) -> None:
    """Between the markers of the Load section of docs/benchmarks.md (added when absent)."""
    out = ROOT / "docs" / "benchmarks.md"
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    begin, end = "<!-- load:begin -->", "<!-- load:end -->"
    if begin not in text or end not in text:
        text = text.rstrip() + "\n\n" + "\n".join([
            "## Load: many clients at once on the real server", "",
            "`python -m bench.load_bench` (bench/load_bench.py; `LOAD_CLIENTS`, `LOAD_SECONDS` and the other "
            "`LOAD_*` variables shrink it): uvicorn serving the application in several worker processes and "
            "separate `vpsctl worker` processes on a PostgreSQL schema of the bench's own, seeded with "
            "10,000 VPS; each client, with a token of its own, mixes reads with jobs started with an "
            "`Idempotency-Key`. Any 5xx, transport error or unexpected answer is an error; after the run "
            "every job answered 202 is looked up (recorded, succeeded, one attempt, its step started "
            "once, no other job made). Exit code 1 when a target is missed.", "", begin, end, ""])
    head, rest = text.split(begin, 1)
    out.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + rest.split(end, 1)[1])


def main() -> int:
    config = Config.from_env()
    source = machine()
    result = run(config)
    lines = report(result, source)
    print("\n".join(lines))
    if os.environ.get("LOAD_WRITE", "1") != "0":
        write(lines)
    return 1 if targets_missed(result) else 0


if __name__ == "__main__":
    sys.exit(main())
