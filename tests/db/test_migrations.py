"""Schema migrations (orchestrator/migrations): a new database, an installation of the previous
release (commit f15dd45, no ``alembic_version``) with data in it, and several processes starting
at once all end with exactly the models' schema.  On SQLite and, when the test command provides
one, on a real PostgreSQL: each test there works in a schema of its own (``search_path``), so it
neither sees nor drops the tables other tests use at the same time."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from orchestrator.core import migrations
from orchestrator.core.clock import utcnow
from orchestrator.core.db import make_engine
from orchestrator.core.errors import SchemaError
from orchestrator.core.models import Incident, Invoice, Job, JobStatus, Maintenance, Subscription, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine.jobs import claim
from tests.databases import empty_database

SNAPSHOT = Path(__file__).parent / "schema"
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def raw_engine(settings: Settings) -> Iterator[Engine]:
    """An engine that leaves the schema alone (the test decides what to create)."""
    engine = make_engine(settings, upgrade=False)
    try:
        yield engine
    finally:
        engine.dispose()


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return migrations.differences(conn)


def load_f15dd45(engine: Engine) -> None:
    """The tables an installation of the previous release has: the DDL its create_all emitted."""
    lines = (SNAPSHOT / f"f15dd45.{engine.dialect.name}.sql").read_text().splitlines()
    ddl = "\n".join(line for line in lines if not line.startswith("--"))
    statements = [s.strip() for s in ddl.split(";\n") if s.strip()]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement.rstrip(";"))


def fill_f15dd45(engine: Engine) -> dict[str, Any]:
    """One row of each kind an installation holds, written through the old tables (reflected)."""
    now = utcnow().replace(tzinfo=None, microsecond=0)
    vps_id, job_id, maintenance_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with engine.begin() as conn:
        meta = sa.MetaData()
        meta.reflect(conn)
        t = meta.tables

        def add(table: str, **values: Any) -> Any:
            return conn.execute(t[table].insert().values(**values)).inserted_primary_key[0]

        customer_id = add("customer", name="alice", email="alice@example.test", language="fr", created_at=now)
        add("apitoken", token_hash="a" * 64, role="customer", customer_id=customer_id, label="laptop",
            created_at=now, revoked_at=None)
        host_id = add("host", name="h1", uri="qemu:///system", site="Marseille", state="up", domain_type="kvm",
                      vcpus=8, memory_mib=16384, disk_gib=500, pool_name="vpsctl", network_name="vpsctl",
                      updated_at=now)
        add("image", name="tiny", os="Tiny Linux", os_family="linux", format="qcow2", size_bytes=1000,
            virtual_size_bytes=2000, sha256="b" * 64, path="/var/lib/vpsctl/images/tiny.qcow2", min_disk_gib=1,
            min_memory_mib=128, description="", built_at=now)
        add("vps", id=vps_id, name="web1", customer_id=customer_id, host_id=host_id, image="tiny", vcpus=1,
            memory_mib=256, disk_gib=2, max_vcpus=2, max_memory_mib=512, status="running", root_generation=0,
            cut_off=False, cut_off_reason=None, mail_blocked=False, suspend_reason=None, suspended_by=None,
            task=None, mac="52:54:00:12:34:56", data_disks=[], ssh_authorized_keys=["ssh-ed25519 AAAA alice"],
            ssh_host_keys=[{"type": "ssh-ed25519", "fingerprint": "SHA256:x"}], addresses=["192.168.150.10"],
            error=None, created_at=now, updated_at=now, deleted_at=None)
        add("job", id=job_id, vps_id=vps_id, kind="reboot", params={"force": False}, status="queued", step=None,
            steps_done=[], steps_total=0, attempts=0, max_attempts=3, lease_owner=None, lease_expires_at=None,
            error=None, requested_by="customer:alice", idempotency_key="k1", created_at=now - timedelta(hours=1),
            not_before=None, started_at=None, finished_at=None)
        add("jobevent", job_id=job_id, vps_id=vps_id, at=now, step="request", status="info", message="asked",
            actor="customer:alice")
        outbox_id = add("outbox", customer_id=customer_id, to_address="alice@example.test", language="fr",
                        template="delivery", subject="Votre VPS", body_text="...", context={"vps": "web1"},
                        vps_id=vps_id, job_id=job_id, status="sent", attempts=1, next_attempt_at=now,
                        last_error=None, message_id="<1@vpsctl>", created_at=now, sent_at=now)
        add("maintenance", id=maintenance_id, host_id=host_id, starts_at=now + timedelta(days=3),
            duration_minutes=30, reason="kernel update", created_by="support:bob", created_at=now)
        add("maintenancevps", maintenance_id=maintenance_id, vps_id=vps_id, starts_at=now + timedelta(days=3))
    return {"customer": customer_id, "vps": vps_id, "job": job_id, "maintenance": maintenance_id,
            "outbox": outbox_id}


def snapshot_rows(engine: Engine, old: sa.MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the old tables, through the old columns only (also readable after the upgrade)."""
    with engine.connect() as conn:
        return {name: [tuple(row) for row in conn.execute(sa.select(*table.c).order_by(*table.primary_key.columns))]
                for name, table in old.tables.items()}


def reflect(engine: Engine) -> sa.MetaData:
    meta = sa.MetaData()
    with engine.connect() as conn:
        meta.reflect(conn)
    return meta


def vpsctl(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in its own process, on these settings."""
    env = {**os.environ, "VPSCTL_STATE_DIR": str(settings.state_dir), "VPSCTL_DATABASE_URL": settings.db.url,
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], env=env, cwd=settings.state_dir,
                          capture_output=True, text=True, timeout=120, check=False)


def test_upgrade_from_empty_gives_the_models_schema(settings: Settings) -> None:
    """Replaying every revision on an empty database gives exactly orchestrator/core/models.py's schema
    (tables, columns, types, nullability, indexes, unique constraints, foreign keys).

    This is the test that fails when someone changes a model without writing the migration:
    add a revision to orchestrator/core/migrations/versions/ (``vpsctl db revision -m "..."`` drafts it)."""
    with raw_engine(settings) as engine:
        with engine.connect() as conn:
            command.upgrade(migrations.alembic_config(conn), "head")
            conn.commit()
        assert migrations.current(engine) == migrations.head()
        assert differences(engine) == []


def test_a_new_database_is_created_at_the_head(settings: Settings) -> None:
    """make_engine on an empty database creates the models' tables directly and records the head
    revision, so later upgrades start from there."""
    with raw_engine(settings) as engine:
        assert migrations.migrate(engine) == "created"
        assert migrations.current(engine) == migrations.head()
        assert differences(engine) == []
        assert migrations.migrate(engine) == "current"  # the next start only reads the version


def test_revision_0001_is_the_f15dd45_schema(settings: Settings, tmp_path: Path) -> None:
    """The first revision builds what the previous release's create_all built: stamping such an
    installation ``0001`` tells the truth about it."""
    kind = "sqlite" if settings.database.startswith("sqlite") else "postgresql"
    (tmp_path / "release").mkdir()
    with empty_database(kind, tmp_path / "release") as release, raw_engine(release) as old, \
            raw_engine(settings) as engine:
        load_f15dd45(old)
        with engine.connect() as conn:
            command.upgrade(migrations.alembic_config(conn), "0001")
            conn.commit()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), reflect(old))
        assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == "alembic_version")] == []


def test_upgrade_keeps_f15dd45_data_and_the_code_works(settings: Settings) -> None:
    """An installation of the previous release, with data, upgraded by ``vpsctl db upgrade``: every
    row is still there, the new NOT NULL columns got their defaults, the schema is the models', and
    the current code works on it (claim its job, subscriptions, invoices, interruptions, deadline
    jobs, the new unique constraints)."""
    with raw_engine(settings) as engine:
        load_f15dd45(engine)
        ids = fill_f15dd45(engine)
        old = reflect(engine)
        before = snapshot_rows(engine, old)
    assert all(before[name] for name in migrations.RELEASE_TABLES - {"audit", "backup", "compromise", "hostimage"})

    result = vpsctl(settings, "db", "current")
    assert (result.returncode, result.stdout.strip()) == (1, "unversioned"), result.stderr
    result = vpsctl(settings, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"upgraded: unversioned -> {migrations.head()}"
    result = vpsctl(settings, "db", "current")
    assert (result.returncode, result.stdout.strip()) == (0, migrations.head()), result.stderr

    engine = make_engine(settings)
    try:
        after = snapshot_rows(engine, old)
        # The one value 0002 fills in: a job that had no not_before may run from its asking.
        not_before = [c.name for c in old.tables["job"].c].index("not_before")
        created_at = [c.name for c in old.tables["job"].c].index("created_at")
        assert [row[not_before] for row in before["job"]] == [None]
        assert [row[not_before] for row in after["job"]] == [row[created_at] for row in before["job"]]
        strip = [tuple(v for i, v in enumerate(row) if i != not_before) for row in before["job"]]
        assert [tuple(v for i, v in enumerate(row) if i != not_before) for row in after["job"]] == strip
        # And the one value 0011 renames: a host that was "up" is "enabled".
        state = [c.name for c in old.tables["host"].c].index("state")
        assert [row[state] for row in before["host"]] == ["up"]
        assert [row[state] for row in after["host"]] == ["enabled"]
        assert [row[:state] + row[state + 1:] for row in after["host"]] == \
            [row[:state] + row[state + 1:] for row in before["host"]]
        unchanged = {"job", "host"}
        assert {k: v for k, v in after.items() if k not in unchanged} == \
            {k: v for k, v in before.items() if k not in unchanged}
        assert differences(engine) == []
        with Session(engine, expire_on_commit=False) as session:
            maintenance = session.get(Maintenance, ids["maintenance"])
            assert (maintenance.kind, maintenance.notice_ids) == ("maintenance", [])
            assert session.get(Vps, ids["vps"]).status == VpsStatus.running

        job = claim(engine, "worker-1", lease_seconds=30)
        assert job is not None and job.id == ids["job"] and job.status == JobStatus.running

        now = utcnow()
        with Session(engine, expire_on_commit=False) as session:
            subscription = Subscription(customer_id=ids["customer"], vps_id=ids["vps"], term_months=12,
                                        started_on=date(2026, 12, 1), rent_ht=Decimal("19.90"))
            session.add(subscription)
            session.flush()
            session.add(Invoice(number="F-2026-000001", customer_id=ids["customer"], subscription_id=subscription.id,
                                purpose="rent", period_start=date(2026, 12, 1), total_ht=Decimal("19.90"),
                                total_vat=Decimal("3.98"), total_ttc=Decimal("23.88")))
            session.add(Maintenance(kind="interruption", starts_at=now + timedelta(days=2), duration_minutes=10,
                                    reason="switch replacement", created_by="support:bob", notice_ids=[ids["outbox"]]))
            session.add(Job(vps_id=ids["vps"], kind="erase", scheduled_at=now + timedelta(days=5),
                            status=JobStatus.cancelled))
            session.commit()
        with Session(engine) as session:
            invoice = session.exec(sa.select(Invoice)).scalars().one()  # type: ignore[call-overload]
            assert (invoice.total_ttc, invoice.subscription_id) == (Decimal("23.88"), subscription.id)
            assert session.exec(sa.select(Job).where(Job.status == JobStatus.cancelled)  # type: ignore[call-overload]
                                ).scalars().one().scheduled_at == now + timedelta(days=5)

        with Session(engine) as session, pytest.raises(IntegrityError):  # R8.2-rent: one invoice per period
            session.add(Invoice(number="F-2026-000002", customer_id=ids["customer"], subscription_id=subscription.id,
                                purpose="rent", period_start=date(2026, 12, 1)))
            session.commit()
        with Session(engine) as session, pytest.raises(IntegrityError):  # R5.2-keep-running: one open per drift
            for _ in range(2):
                session.add(Incident(vps_id=ids["vps"], customer_id=ids["customer"], malfunction="vps_down",
                                     opened_by="reconciler"))
                session.flush()
    finally:
        engine.dispose()


def test_an_unversioned_f15dd45_database_is_upgraded_by_make_engine_alone(settings: Settings) -> None:
    """Every existing installation: the API or a worker starting on it is enough."""
    with raw_engine(settings) as engine:
        load_f15dd45(engine)
        assert migrations.current(engine) is None
        assert differences(engine) != []
    engine = make_engine(settings)
    try:
        assert migrations.current(engine) == migrations.head()
        assert differences(engine) == []
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
            assert versions == [migrations.head()]
        assert migrations.migrate(engine) == "current"
    finally:
        engine.dispose()


def test_an_unversioned_database_already_at_the_models_schema_is_only_stamped(settings: Settings) -> None:
    """A database made by create_all from this version's models before migrations existed."""
    with raw_engine(settings) as engine:
        migrations.TARGET.create_all(engine)
        assert migrations.migrate(engine) == "stamped"
        assert migrations.current(engine) == migrations.head()


def test_a_database_of_something_else_is_refused_untouched(settings: Settings) -> None:
    with raw_engine(settings) as engine:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY)")
        with pytest.raises(SchemaError, match="missing: apitoken"):
            make_engine(settings)
        assert set(sa.inspect(engine).get_table_names()) == {"customer"}


def test_an_unversioned_database_of_neither_schema_is_refused(settings: Settings) -> None:
    """Tables beyond the first release's but not the models' (a development database made by
    create_all from code between releases): neither 0001 nor the head would be true of it."""
    with raw_engine(settings) as engine:
        migrations.TARGET.create_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_job_scheduled_at")
        with pytest.raises(SchemaError, match="no schema version"):
            migrations.migrate(engine)
        assert migrations.current(engine) is None


def test_a_failed_upgrade_leaves_the_database_as_it_was(settings: Settings) -> None:
    """The stamp and every revision run in one transaction: an upgrade that fails halfway (here a
    name 0002 wants is taken) leaves the installation at the previous release, unversioned."""
    with raw_engine(settings) as engine:
        load_f15dd45(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE INDEX ix_paymentdefault_status ON customer (email)")
        before = reflect(engine)
        with pytest.raises(sa.exc.DBAPIError):
            migrations.migrate(engine)
        after = reflect(engine)
        assert sorted(after.tables) == sorted(before.tables)  # no alembic_version, no new table
        assert "scheduled_at" not in after.tables["job"].c  # added before the failure, rolled back
        assert migrations.current(engine) is None


def start(database_url: str, state_dir: str, go: Any, out: Any) -> None:
    """One process starting (API or worker): make_engine, then report the revision it sees."""
    go.wait(60)
    try:
        engine = make_engine(Settings(state_dir=Path(state_dir), database_url=database_url))
        out.put(("ok", migrations.current(engine)))
        engine.dispose()
    except Exception as exc:
        out.put(("error", repr(exc)))


@pytest.mark.parametrize("origin", ["empty", "f15dd45"])
def test_processes_starting_at_once_migrate_once(settings: Settings, origin: str) -> None:
    """Several processes start together on a database to create or to upgrade: each succeeds (no
    duplicate table or column), and the database ends at the head with one version row."""
    if origin == "f15dd45":
        with raw_engine(settings) as engine:
            load_f15dd45(engine)
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    procs = [context.Process(target=start, args=(settings.db.url, str(settings.state_dir), go, out))
             for _ in range(3)]
    for proc in procs:
        proc.start()
    go.set()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert results == [("ok", migrations.head())] * len(procs)
    with raw_engine(settings) as engine:
        assert differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_0005_names_the_cause_of_the_jobs_queued_before_it(settings: Settings) -> None:
    """Jobs queued by the workflows before ``job.cause`` existed (deadline jobs of a payment
    default, a compromise's reinstall, an incident's deadline, a breach's termination, a hook) get
    the cause their workflow now finds them by; the others get none."""
    with raw_engine(settings) as engine:
        with engine.connect() as conn:
            command.upgrade(migrations.alembic_config(conn), "0004_evidence")
            conn.commit()
        now = utcnow().replace(tzinfo=None)
        queued = {  # kind, params -> the cause expected
            "erase-default": ("erase", {"reason": "nonpayment", "default_id": "d1"}, "payment_default:d1"),
            "terminate-default": ("terminate", {"subscription_id": "s1", "reason": "nonpayment", "default_id": "d1"},
                                  "payment_default:d1"),
            "terminate-breach": ("terminate", {"subscription_id": "s1", "reason": "breach",
                                               "breach_notice_id": "b1"}, "breach_notice:b1"),
            "terminate-end": ("terminate", {"subscription_id": "s1", "reason": "non_renewal"}, "subscription:s1"),
            "reinstall": ("reinstall", {"image": "tiny", "compromise_id": "c1"}, "compromise:c1"),
            "deadline": ("incident_deadline", {"incident_id": "i1"}, "incident:i1"),
            "hook": ("hook", {"event": "vps_created", "operation_job_id": "j0"}, "job:j0"),
            "resize": ("resize", {"memory_mib": 512, "change_order_id": "o1"}, "change_order:o1"),
            "staff-resize": ("resize", {"memory_mib": 512, "reason": "ticket 1"}, None),
            "reboot": ("reboot", {"hard": True}, None),
        }
        job = reflect(engine).tables["job"]
        with engine.begin() as conn:
            for key, (kind, params, _cause) in queued.items():
                conn.execute(job.insert().values(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)), vps_id=None, kind=kind, params=params,
                    status="queued", steps_done=[], steps_total=1, attempts=0, max_attempts=3, requested_by="t",
                    created_at=now, not_before=now))
        with engine.connect() as conn:
            command.upgrade(migrations.alembic_config(conn), "head")
            conn.commit()
        assert differences(engine) == []
        with engine.connect() as conn:
            found = dict(conn.execute(sa.text("SELECT id, cause FROM job")).all())
    assert {key: found[str(uuid.uuid5(uuid.NAMESPACE_URL, key))] for key in queued} == {
        key: cause for key, (_kind, _params, cause) in queued.items()}


def test_0010_gives_the_tokens_made_before_it_an_expiry_and_automation_its_scopes(settings: Settings) -> None:
    """Tokens from before expiries existed expire 90 days after the upgrade, on the orchestrator's
    clock; automation tokens keep every right they had (every scope), the others carry none."""
    with raw_engine(settings) as engine:
        with engine.connect() as conn:
            command.upgrade(migrations.alembic_config(conn), "0008")
            conn.commit()
        now = utcnow().replace(tzinfo=None, microsecond=0)
        tables = reflect(engine).tables
        with engine.begin() as conn:
            customer_id = conn.execute(tables["customer"].insert().values(
                name="alice", email="alice@example.test", language="fr", created_at=now)).inserted_primary_key[0]
            for role, customer, label in (("customer", customer_id, "laptop"), ("support", None, "desk"),
                                          ("automation", None, "cron")):
                conn.execute(tables["apitoken"].insert().values(
                    token_hash=(label * 64)[:64], role=role, customer_id=customer, label=label, created_at=now))
        upgraded_at = utcnow().replace(tzinfo=None)
        with engine.connect() as conn:
            command.upgrade(migrations.alembic_config(conn), "head")
            conn.commit()
        assert differences(engine) == []
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT label, expires_at, scopes, last_used_at FROM apitoken")).all()
    found = {label: (expires, json.loads(scopes) if isinstance(scopes, str) else scopes, used)
             for label, expires, scopes, used in rows}
    every_scope = ["billing:read", "billing:write", "customers:read", "customers:write", "dda:read", "dda:write",
                   "hosts:read", "incidents:read", "incidents:write", "maintenance:read", "maintenance:write",
                   "security:read", "security:write", "vps:read", "vps:write"]
    assert {label: (scopes, used) for label, (_expires, scopes, used) in found.items()} == {
        "laptop": ([], None), "desk": ([], None), "cron": (every_scope, None)}
    for expires, _scopes, _used in found.values():
        expires = datetime.fromisoformat(expires) if isinstance(expires, str) else expires
        assert timedelta(days=90) <= expires - upgraded_at < timedelta(days=90, minutes=1)
