"""``vpsctl``: run the control plane, a worker, manage customers and tokens, build images, add hosts,
migrate; and, as a client of a remote API, ``vps``, ``plan``, ``job`` and ``profile`` (orchestrator/cli/remote.py).

The top of the core: it may import everything, the HTTP edge included (``serve`` starts it), and
is the owner of its commands' transactions and of their settings (read once, the clock started
from them)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlmodel import Session

from orchestrator.cli.remote import job_app, plan_app, profile_app, vps_app
from orchestrator.compute import images
from orchestrator.compute.hosts import Drivers, register_host
from orchestrator.core import accounts, clock
from orchestrator.core.auth import SCOPES, issue_token, revoke_token, token_status, tokens
from orchestrator.core.db import make_engine
from orchestrator.core.errors import NotFound, VpsctlError
from orchestrator.core.files import PRIVATE_UMASK
from orchestrator.core.models import ApiToken, Role
from orchestrator.core.settings import TOKEN_MAX_DAYS, Settings, get_settings

app = typer.Typer(help="VPS provisioning and lifecycle orchestrator.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: made, listed, revoked (shown once, kept as a hash).", no_args_is_help=True)
customer_app = typer.Typer(help="Customers (a customer token names one that exists).", no_args_is_help=True)
image_app = typer.Typer(help="Guest images.", no_args_is_help=True)
host_app = typer.Typer(help="Hypervisor hosts.", no_args_is_help=True)
db_app = typer.Typer(help="The database's schema (migrations).", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(customer_app, name="customer")
app.add_typer(image_app, name="image")
app.add_typer(host_app, name="host")
app.add_typer(db_app, name="db")
app.add_typer(vps_app, name="vps")
app.add_typer(plan_app, name="plan")
app.add_typer(job_app, name="job")
app.add_typer(profile_app, name="profile")
err = Console(stderr=True)
ACTOR = "vpsctl"  # who the audit says did what the command line did


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _settings() -> Settings:
    """The process's settings; its clock starts at ``VPSCTL_NOW`` when that is set."""
    os.umask(PRIVATE_UMASK)  # what the command and its libraries write is private (core/files.py)
    settings = get_settings()
    clock.start(settings.now)
    return settings


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}")  # names people typed are text, not markup
    raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    worker: Annotated[bool, typer.Option(help="Run a worker in this process")] = True,
) -> None:
    """Run the HTTP API (and, by default, a worker) on the embedded defaults."""
    from api import serving
    from api.app import create_app

    _logging()
    settings = _settings()
    engine = make_engine(settings)
    drivers = Drivers()
    try:
        with Session(engine, expire_on_commit=False) as session:
            registered = register_host(session, settings, drivers, settings.hosts.name, settings.hosts.libvirt_uri,
                                       settings.hosts.site)
            err.print(f"host {registered.name}: {settings.hosts.libvirt_uri} ({registered.domain_type}, "
                      f"{registered.vcpus} CPU, {registered.memory_mib} MiB, {registered.disk_gib} GiB pool)")
    except VpsctlError as exc:
        _fail(exc)
    finally:
        drivers.close()
    listen_host = host or settings.api.host
    listen_port = port or settings.api.port
    err.print(f"vpsctl API on http://{listen_host}:{listen_port}  (docs: /docs)")
    err.print("get a token with: vpsctl token create --role support   (a customer's: vpsctl customer create "
              "NAME --email E --language fr|en, then vpsctl token create --role customer --customer NAME)")
    serving.run(create_app(settings, run_worker=worker), host=listen_host, port=listen_port, log_level="info")


@app.command("worker")
def run_worker() -> None:
    """Run a worker alone (claims jobs from the shared database)."""
    import orchestrator.workflows  # noqa: F401  (registers operations, workflows, periodic duties)
    from orchestrator.engine import ticker
    from orchestrator.engine.worker import Worker
    from orchestrator.notify import start_outbox_thread, start_webhook_thread

    _logging()
    settings = _settings()
    engine = make_engine(settings)
    worker = Worker(engine, settings)
    outbox_stop = threading.Event()
    start_outbox_thread(engine, settings, outbox_stop)
    start_webhook_thread(engine, settings, outbox_stop)
    ticker.start_thread(engine, settings, outbox_stop)

    def stop(*_: object) -> None:
        outbox_stop.set()
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        stop()
    finally:
        worker.drivers.close()


@customer_app.command("create")
def customer_create(
    name: Annotated[str, typer.Argument(help="The customer's name, unique")],
    email: Annotated[str, typer.Option(help="Where the customer's notices go")],
    language: Annotated[str, typer.Option(help="The language of the notices: fr or en")],
) -> None:
    """Record a new customer."""
    settings = _settings()
    with Session(make_engine(settings), expire_on_commit=False) as session:
        try:
            customer = accounts.create_customer(session, name, email, language, ACTOR)
            session.commit()
        except VpsctlError as exc:
            _fail(exc)
    typer.echo(f"customer {customer.id}: {customer.name} <{customer.email}> ({customer.language})")


@customer_app.command("list")
def customer_list() -> None:
    """Every customer."""
    settings = _settings()
    with Session(make_engine(settings), expire_on_commit=False) as session:
        table = Table("id", "name", "email", "language", "created")
        for customer in accounts.customers(session):
            table.add_row(*_cells(str(customer.id), customer.name, customer.email, customer.language,
                                  _when(customer.created_at)))
    _print_table(table)


def _print_table(table: Table) -> None:
    """A listing on standard output; when that is not a terminal (a pipe, a file) it is not cut
    to 80 columns."""
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _cells(*values: str) -> list[Text]:
    """A table's row as plain text: what people typed (names, labels) is never read as markup."""
    return [Text(value) for value in values]


def _when(instant: datetime | None) -> str:
    return f"{instant:%Y-%m-%d %H:%M}" if instant else "-"


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="support, customer or automation")],
    customer: Annotated[str | None, typer.Option(help="The existing customer a customer token belongs to")] = None,
    label: Annotated[str, typer.Option(help="What the token is for")] = "",
    days: Annotated[int | None, typer.Option(min=1, max=TOKEN_MAX_DAYS,
                                             help="Its lifetime in days (default: VPSCTL_TOKEN_DAYS)")] = None,
    scope: Annotated[list[str] | None, typer.Option(
        help="Automation tokens: a scope it may call (repeat the option; at least one): " + ", ".join(SCOPES))] = None,
) -> None:
    """Print a new bearer token, alone on the last line (stored only as a hash)."""
    settings = _settings()
    with Session(make_engine(settings), expire_on_commit=False) as session:
        try:
            owner = accounts.customer_named(session, customer) if customer else None
            issued = issue_token(session, role, owner, label=label, days=days or settings.api.token_days,
                                 scopes=scope or (), actor=ACTOR)
            session.commit()
        except VpsctlError as exc:
            _fail(exc)
    record = issued.record
    scopes = f", scopes {' '.join(record.scopes)}" if record.scopes else ""
    err.print(f"new {role.value} token {record.id}{f' for {escape(customer)}' if customer else ''}{scopes}, "
              f"expires {_when(record.expires_at)} UTC (shown once):")
    sys.stdout.write(issued.token + "\n")


@token_app.command("list")
def token_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's tokens")] = None,
) -> None:
    """Every token with its role, owner, label, scopes and dates (never the token or its hash)."""
    settings = _settings()
    with Session(make_engine(settings), expire_on_commit=False) as session:
        try:
            customer_id = accounts.customer_named(session, customer).id if customer else None
        except VpsctlError as exc:
            _fail(exc)
        names = {c.id: c.name for c in accounts.customers(session)}
        table = Table("id", "role", "customer", "label", "scopes", "status", "created", "expires", "last used",
                      "revoked", title="times in UTC")
        for record in tokens(session, customer_id):
            table.add_row(*_cells(*_token_row(record, names)))
    _print_table(table)


def _token_row(record: ApiToken, names: dict[int | None, str]) -> list[str]:
    return [str(record.id), Role(record.role).value, names.get(record.customer_id, "-"), record.label,
            " ".join(record.scopes) or "-", token_status(record), _when(record.created_at),
            _when(record.expires_at), _when(record.last_used_at), _when(record.revoked_at)]


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (vpsctl token list)")]) -> None:
    """Revoke a token: it is refused from the next request on."""
    settings = _settings()
    with Session(make_engine(settings), expire_on_commit=False) as session:
        try:
            revoked = revoke_token(session, _token(session, token_id), ACTOR)
            session.commit()
        except VpsctlError as exc:
            _fail(exc)
    typer.echo(f"token {token_id} revoked at {_when(revoked.revoked_at)} UTC")


def _token(session: Session, token_id: int) -> ApiToken:
    record = session.get(ApiToken, token_id)
    if record is None:
        raise NotFound(f"no token {token_id} (vpsctl token list)")
    return record


@image_app.command("build")
def image_build(
    name: Annotated[str, typer.Argument(help="Image name from images/catalog.json")],
    force: Annotated[bool, typer.Option(help="Rebuild even if cached")] = False,
) -> None:
    """Build an image from its recipe (cached) and register it in the catalog."""
    settings = _settings()
    with Session(make_engine(settings), expire_on_commit=False) as session:
        try:
            image = images.build(settings, session, name, force=force)
        except VpsctlError as exc:
            _fail(exc)
    typer.echo(f"{image.name}: {image.path} {image.size_bytes} bytes sha256:{image.sha256}")


@host_app.command("add")
def host_add(
    name: Annotated[str, typer.Argument()],
    uri: Annotated[str, typer.Argument(help="libvirt URI, e.g. qemu+ssh://root@host/system")],
    site: Annotated[str, typer.Option(help="Data-centre site")] = "Marseille",
    guest_proxy_command: Annotated[str | None, typer.Option(
        help="How its guests are reached, e.g. 'ssh -W %h:%p root@HOST' (%h, %p: guest address and port); "
             "default: directly, or VPSCTL_GUEST_PROXY_COMMAND")] = None,
    ssh_host_key: Annotated[str | None, typer.Option(
        help="qemu+ssh:// hosts: the host's SSH key or its SHA256:... fingerprint (ssh-keygen -lf "
             "/etc/ssh/ssh_host_ed25519_key.pub on the host); without it the fingerprint presented is shown "
             "and nothing is recorded")] = None,
    migration_address: Annotated[str | None, typer.Option(
        help="The address other hosts reach its QEMU at for a live migration (default: cold moves only)")] = None,
) -> None:
    """Register a hypervisor host (prepares its storage pool and guest network)."""
    settings = _settings()
    drivers = Drivers()
    with Session(make_engine(settings), expire_on_commit=False) as session:
        try:
            host = register_host(session, settings, drivers, name, uri, site, guest_proxy_command, ssh_host_key,
                                 migration_address)
        except VpsctlError as exc:
            _fail(exc)
        finally:
            drivers.close()
    typer.echo(f"{host.name}: {host.uri} {host.domain_type} {host.vcpus} CPU {host.memory_mib} MiB")


@host_app.command("prepare")
def host_prepare(
    name: Annotated[str, typer.Argument()],
    target: Annotated[str, typer.Argument(help="'local' (this machine) or [USER@]ADDRESS[:PORT] (over SSH)")],
    site: Annotated[str, typer.Option(help="Data-centre site")] = "Marseille",
    key: Annotated[str | None, typer.Option(help="SSH private key to log in with (over SSH)")] = None,
    ssh_host_key: Annotated[str | None, typer.Option(
        help="Over SSH: the target's host key or its SHA256:... fingerprint (without it the fingerprint "
             "presented is shown and nothing runs)")] = None,
    uri: Annotated[str | None, typer.Option(
        help="libvirt URI to register (default: qemu:///system, or qemu+ssh://USER@ADDRESS:PORT/system)")] = None,
    guest_proxy_command: Annotated[str | None, typer.Option(help="How its guests are reached (%h, %p)")] = None,
) -> None:
    """Prepare a machine as a hypervisor host (playbooks/hypervisor.yml through ansible-runner), then
    register it once its libvirtd answers.  Safe to repeat: a second run changes nothing."""
    from orchestrator.compute.preparation import prepare_host

    settings = _settings()
    drivers = Drivers()
    with Session(make_engine(settings), expire_on_commit=False) as session:
        try:
            done = prepare_host(session, settings, drivers, name, target, site, uri=uri, keyfile=key,
                                ssh_host_key=ssh_host_key, guest_proxy_command=guest_proxy_command)
        except VpsctlError as exc:
            _fail(exc)
        finally:
            drivers.close()
    host = done.host
    typer.echo(f"playbook: changed={done.result.changed} failed={done.result.failed}")
    typer.echo(f"{host.name}: {host.uri} {host.domain_type} {host.vcpus} CPU {host.memory_mib} MiB, site {host.site}, "
               f"{host.state}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database's schema to this version (also done at every start; safe to repeat)."""
    from orchestrator.core import migrations

    _logging()
    engine = make_engine(_settings(), upgrade=False)
    before = migrations.current(engine)
    try:
        outcome = migrations.migrate(engine)
    except VpsctlError as exc:
        _fail(exc)
    typer.echo(f"{outcome}: {before or 'unversioned'} -> {migrations.current(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision (changes nothing); exit status 1 when it is behind."""
    from orchestrator.core import migrations

    revision = migrations.current(make_engine(_settings(), upgrade=False))
    head = migrations.head()
    typer.echo(revision or "unversioned")
    if revision != head:
        err.print(f"this version's schema is {head}: run vpsctl db upgrade")
        raise typer.Exit(1)
    err.print("up to date")


@db_app.command("revision", hidden=True)
def db_revision(message: Annotated[str, typer.Option("-m", "--message", help="What the change is")]) -> None:
    """Developers: draft the next revision from the models' difference with the database."""
    from alembic import command

    from orchestrator.core import migrations

    engine = make_engine(_settings())
    with engine.connect() as conn:
        cfg = migrations.alembic_config(conn)
        cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        script = command.revision(cfg, message, autogenerate=True, rev_id=f"{int(migrations.head()[:4]) + 1:04d}")
    typer.echo(getattr(script, "path", script))

