"""The load bench's machinery (bench/load_bench.py), kept from rotting: a few clients for a few
seconds against the real server (uvicorn, a separate ``vpsctl worker`` process) on PostgreSQL when
the test command gives it (else SQLite), with no error, and every job answered found, succeeded and
run once, no other job made; and the end-of-run accounting shown to catch a job gone astray."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, update

from bench.load_bench import Config, Tally, account, database, run, seed, settings_for, steady
from orchestrator.core.db import make_engine
from orchestrator.core.models import Job, JobEvent, JobStatus, Vps, VpsStatus
from tests.databases import databases


def test_a_small_load_run_has_no_error_and_accounts_for_every_job() -> None:
    result = run(Config(clients=5, seconds=3, vps=200, customers=2, api_workers=1, job_workers=1, think_ms=50,
                        drain_seconds=30, database=databases()[-1]))
    assert result.errors == []
    assert not result.tally.logged, result.tally.logged  # nothing went wrong on the server's side either
    assert result.problems == []
    assert result.tally.jobs, "no job was started"
    assert result.accounted == len(result.tally.jobs)
    # reads and jobs were both measured (the rarer reads may not come up in 3 s)
    assert {"GET /v1/vps/{id}", "GET /v1/vps?limit=50", "POST /v1/vps/{id}/suspend"} <= set(result.tally.latencies)


def test_the_job_accounting_finds_a_job_lost_run_twice_or_never_answered(tmp_path: Path) -> None:
    """The end-of-run check can fail: each way a job can go astray is named (SQLite, no server)."""
    with database("sqlite", tmp_path) as url:
        settings = settings_for(tmp_path, url)
        seeded = seed(settings, Config(clients=1, vps=2, customers=1, database="sqlite"), tmp_path)
        first, second = seeded.actions[0]
        engine = make_engine(settings)
        with Session(engine) as session:
            for job_id, vps_id, attempts in (("good", first, 1), ("twice", second, 2), ("unasked", first, 1)):
                session.add(Job(id=job_id, vps_id=vps_id, kind="suspend", status=JobStatus.succeeded,
                                attempts=attempts, steps_done=["pause"]))
                session.flush()
                for _ in range(attempts):
                    session.add(JobEvent(job_id=job_id, vps_id=vps_id, step="pause", status="started"))
            session.exec(update(Vps).where(col(Vps.id) == first).values(status=VpsStatus.suspended))
            session.commit()
        engine.dispose()
        tally = Tally(jobs={"good": (first, "suspend"), "twice": (second, "suspend"), "lost": (first, "suspend")},
                      last_kind={first: "suspend", second: "suspend"})
        _, accounted, problems = account(settings, tally, drain_seconds=1)
    assert accounted == 1
    assert sorted(problems) == sorted([
        "job twice (suspend): 2 attempts, 2 steps started, steps done ['pause']",
        "job lost (suspend) answered 202 but is not recorded",
        "job unasked (suspend) was made but never answered",
        f"VPS {second}: running after its last job, a suspend",
    ])


def test_the_latency_targets_look_at_the_calls_sent_from_ten_seconds_on() -> None:
    tally = Tally(began=100.0, opening_answered=[101.0, 103.5, 102.0])
    tally.latencies["GET /v1/vps/{id}"] = [2000.0, 900.0, 12.0, 15.0]
    tally.sent["GET /v1/vps/{id}"] = [101.5, 109.9, 110.0, 140.0]  # the first two in the opening's wake
    assert steady(tally, "GET /v1/vps/{id}") == [12.0, 15.0]
    assert steady(tally, "GET /v1/jobs") == []
