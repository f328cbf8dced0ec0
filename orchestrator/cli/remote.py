"""``vpsctl vps|plan|job|profile``: drive a remote vpsctl API (operators and customers alike).

These commands never touch the database: they call the API with a profile's token
(orchestrator/cli/profiles.py) through orchestrator/cli/client.py, and print its answers as rich
tables or, with ``--output json``, as the JSON the API sent.  An error answer is printed from its
problem+json document (title, detail, rule, current status) on standard error, exit status 1; bad
usage is exit status 2 (typer's); no traceback is shown.  A job-starting command with ``--wait``
follows the job (a progress bar and its events on standard error) and exits 1 when it fails."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from orchestrator.cli import profiles
from orchestrator.cli.client import FINISHED, JSON, ApiError, Client, ClientError, Unreachable

vps_app = typer.Typer(help="VPS on a remote API (profile: --profile, or VPSCTL_API_URL and VPSCTL_TOKEN).",
                      no_args_is_help=True)
job_app = typer.Typer(help="Jobs on a remote API.", no_args_is_help=True)
plan_app = typer.Typer(help="Plans on offer on a remote API (what `vpsctl vps create --plan` orders).",
                       no_args_is_help=True)
profile_app = typer.Typer(help="Remote APIs (URL and token) kept in the configuration file, 0600.",
                          no_args_is_help=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # messages are not cut: paths, commands
DETACH = b"\x1d"  # Ctrl-]


class Output(StrEnum):
    table = "table"
    json = "json"


ProfileOpt = Annotated[str | None, typer.Option(
    "--profile", "-p", envvar="VPSCTL_PROFILE",
    help="A profile of the configuration file (default: VPSCTL_API_URL and VPSCTL_TOKEN, else the default profile)")]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", envvar="VPSCTL_OUTPUT", help="table or json")]
WaitOpt = Annotated[bool, typer.Option("--wait", "-w", help="Follow the job to its end (exit status 1 if it fails)")]
TimeoutOpt = Annotated[float | None, typer.Option(help="With --wait: give up after this many seconds")]
VpsArg = Annotated[str, typer.Argument(help="The VPS's id (vpsctl vps list)")]
KeysOpt = Annotated[list[str] | None, typer.Option(
    "--ssh-key", help="An OpenSSH public key for root, or a file of them (repeat for several)")]


# --- plumbing -------------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _explain(exc: ApiError) -> str:
    """The problem+json document as lines: title and detail, then what the API added."""
    lines = [f"{exc} (HTTP {exc.status})"]
    for key in ("rule", "current_status", "quota", "limit"):
        if key in exc.extra:
            lines.append(f"{key.replace('_', ' ')}: {exc.extra[key]}")
    return "\n".join(lines)


@contextmanager
def _api(profile: str | None) -> Iterator[Client]:
    """A client of the chosen API; every failure becomes a readable message and exit status 1."""
    try:
        chosen = profiles.resolve(profile)
    except profiles.ProfileError as exc:
        _fail(str(exc))
    client = Client(chosen.url, chosen.token)
    try:
        yield client
    except ApiError as exc:
        _fail(_explain(exc))
    except Unreachable as exc:
        _fail(f"the API did not answer: {exc}")
    except ClientError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    finally:
        client.close()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _print_table(table: Table) -> None:
    Console(width=None if sys.stdout.isatty() else 200, highlight=False).print(table)


def _text(value: Any) -> Text:
    """A cell: what the API sent, never read as markup."""
    if value is None or value == "" or value == []:
        return Text("-")
    if isinstance(value, list):
        return Text(", ".join(str(v) for v in value))
    return Text(str(value))


def _when(value: Any) -> str:
    return str(value).replace("T", " ")[:19] if value else "-"


def _keys(values: list[str] | None) -> list[str]:
    """Public keys given literally or as files of them (``~/.ssh/id_ed25519.pub``)."""
    keys: list[str] = []
    for value in values or []:
        path = Path(value).expanduser()
        if not value.startswith(("ssh-", "ecdsa-", "sk-")) and path.is_file():
            keys += [line.strip() for line in path.read_text().splitlines()
                     if line.strip() and not line.startswith("#")]
        else:
            keys.append(value.strip())
    return keys


# --- rendering ------------------------------------------------------------------------------


def _vps_table(items: list[JSON]) -> Table:
    table = Table("id", "name", "customer", "status", "site", "vCPU", "MiB", "GiB", "addresses", "created (UTC)")
    for vps in items:
        status = vps.get("status")
        if vps.get("task"):
            status = f"{status} ({vps['task']})"
        table.add_row(*[_text(v) for v in (vps.get("id"), vps.get("name"), vps.get("customer"), status,
                                           vps.get("site"), vps.get("vcpus"), vps.get("memory_mib"),
                                           vps.get("disk_gib"), vps.get("addresses"))],
                      _text(_when(vps.get("created_at"))))
    return table


def _vps_detail(vps: JSON) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key in ("id", "name", "customer", "status", "last_known_status", "task", "image", "vcpus", "memory_mib",
                "disk_gib", "site", "host", "placement_group", "addresses", "cut_off", "cut_off_reason",
                "mail_blocked", "suspend_reason", "error"):
        if key in vps and (vps[key] not in (None, False) or key in ("cut_off",)):
            table.add_row(key, _text(vps[key]))
    for disk in vps.get("data_disks") or []:
        table.add_row("data disk", _text(f"{disk.get('id')} {disk.get('size_gib')} GiB ({disk.get('target')})"))
    for key in vps.get("ssh_host_keys") or []:
        table.add_row("ssh host key", _text(f"{key.get('type')} {key.get('fingerprint')}"))
    table.add_row("created", _text(_when(vps.get("created_at"))))
    table.add_row("updated", _text(_when(vps.get("updated_at"))))
    return table


def _event_line(event: JSON) -> Text:
    status = str(event.get("status"))
    style = {"done": "green", "failed": "red", "started": "cyan"}.get(status, "")
    line = Text(f"  {_when(event.get('at'))[11:]} ")
    line.append(f"{event.get('step')} {status}", style=style)
    if event.get("message"):
        line.append(f"  {event['message']}")
    return line


def _job_table(job: JSON) -> Table:
    table = Table(title=f"job {job.get('id')} ({job.get('kind')}): {job.get('status')}", title_justify="left")
    for column in ("at (UTC)", "step", "status", "message"):
        table.add_column(column)
    for event in job.get("events") or []:
        table.add_row(_text(_when(event.get("at"))), _text(event.get("step")), _text(event.get("status")),
                      _text(event.get("message")))
    return table


def _accepted(answer: JSON, output: Output) -> None:
    """What a job-starting command prints when it does not wait."""
    if output is Output.json:
        _print_json(answer)
        return
    job = answer.get("job") or {}
    plan = answer.get("plan")
    if plan:
        err.print(Text(f"plan: {json.dumps(plan)}"))
    err.print(Text(f"job {job.get('id')} ({job.get('kind')}) {job.get('status')}; "
                   f"follow it with: vpsctl job watch {job.get('id')}"))


def _watch(client: Client, job: JSON, timeout: float | None = None) -> JSON:
    """Follow ``job`` to its end: a progress bar fed by its ``progress`` and each new event
    printed above it (standard error).  Answers the finished job."""
    job_id = str(job["id"])
    shown = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        task = progress.add_task(f"{job.get('kind')} {job_id[:8]}", total=None)
        try:
            for job in client.follow_job(job_id, timeout=timeout):
                events = job.get("events") or []
                for event in events[shown:]:
                    progress.console.print(_event_line(event))
                shown = len(events)
                done = job.get("progress") or {}
                step = job.get("status") if job.get("status") in FINISHED else done.get("step") or job.get("status")
                progress.update(task, total=done.get("total") or None, completed=done.get("done") or 0,
                                description=f"{job.get('kind')} {job_id[:8]} {step}")
        except KeyboardInterrupt:
            progress.stop()
            err.print(f"stopped watching; the job goes on: vpsctl job watch {job_id}")
            raise typer.Exit(130) from None
    return job


def _finish(job: JSON) -> None:
    """Exit 1 with the job's error unless it succeeded."""
    if job.get("status") != "succeeded":
        _fail(f"job {job.get('id')} ({job.get('kind')}) {job.get('status')}: {job.get('error') or 'no error given'}")
    err.print(Text(f"job {job.get('id')} ({job.get('kind')}) succeeded", style="green"))


def _job_started(client: Client, answer: JSON, output: Output, wait: bool, timeout: float | None,
                 after: Callable[[], JSON] | None = None) -> None:
    """Print the accepted job, or follow it (``after``: what to print once it succeeded)."""
    if not wait:
        _accepted(answer, output)
        return
    if answer.get("plan"):
        err.print(Text(f"plan: {json.dumps(answer['plan'])}"))
    job = _watch(client, answer["job"], timeout)
    result = after() if after and job.get("status") == "succeeded" else None
    if output is Output.json:
        _print_json({**({"vps": result} if result else {}), "job": job})
    elif result:
        _print_table(_vps_detail(result))
    _finish(job)


# --- vps ------------------------------------------------------------------------------------


@vps_app.command("list")
def vps_list(
    profile: ProfileOpt = None, output: OutputOpt = Output.table,
    status: Annotated[str | None, typer.Option(help="Only VPS in this status")] = None,
    name: Annotated[str | None, typer.Option(help="Only VPS of this name")] = None,
    site: Annotated[str | None, typer.Option(help="Only VPS at this site")] = None,
    include_deleted: Annotated[bool, typer.Option(help="Deleted VPS too")] = False,
    limit: Annotated[int | None, typer.Option(min=1, max=500, help="At most this many (default: all)")] = None,
) -> None:
    """Your VPS (staff: everyone's), newest first."""
    with _api(profile) as client:
        items = client.list_vps(status=status, name=name, site=site, include_deleted=include_deleted,
                                limit=limit or 100, everything=limit is None)
    if output is Output.json:
        _print_json(items)
    else:
        _print_table(_vps_table(items))


@vps_app.command("show")
def vps_show(vps_id: VpsArg, profile: ProfileOpt = None, output: OutputOpt = Output.table) -> None:
    """One VPS: status, sizes, addresses, SSH host keys."""
    with _api(profile) as client:
        vps = client.get_vps(vps_id)
    if output is Output.json:
        _print_json(vps)
    else:
        _print_table(_vps_detail(vps))


def _plan_table(items: list[JSON], retired: bool) -> Table:
    columns = ["code", "name", "vCPU", "MiB", "GiB", "terms (months)", "sites", "images", "month HT", "setup HT"]
    table = Table(*columns, *(["active"] if retired else []))
    for plan in items:
        row = [_text(plan.get(k)) for k in ("code", "name", "vcpus", "memory_mib", "disk_gib", "terms")]
        row += [_text(plan.get("sites") or "any"), _text(plan.get("images") or "any"),
                _text(plan.get("monthly_price_ht")), _text(plan.get("setup_fee_ht"))]
        table.add_row(*row, *([_text("yes" if plan.get("active") else "retired")] if retired else []))
    return table


def _order_detail(answer: JSON) -> Table:
    """What an order recorded: the order, its subscription and first invoice (R8.1-setup-fee)."""
    order, invoice = answer.get("order") or {}, answer.get("invoice") or {}
    subscription = answer.get("subscription") or {}
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in (
        ("order", order.get("id")), ("plan", order.get("plan_code")),
        ("term", f"{order.get('term_months')} months, billed {order.get('billing_period')}"),
        ("site", order.get("site")), ("subscription", subscription.get("id") or order.get("subscription_id")),
        ("rent HT", f"{subscription['rent_ht']} per billing period" if subscription.get("rent_ht") else None),
        ("invoice", invoice.get("number") or order.get("invoice_number")),
        ("invoice total", f"{invoice.get('total_ht')} HT, {invoice.get('total_ttc')} TTC, "
                          f"due {invoice.get('due_on')}" if invoice else None),
        ("vps", order.get("vps_id")), ("job", order.get("job_id"))):
        table.add_row(key, _text(value))
    return table


@plan_app.command("list")
def plan_list(
    profile: ProfileOpt = None, output: OutputOpt = Output.table,
    include_retired: Annotated[bool, typer.Option(help="Staff: retired plans too")] = False,
) -> None:
    """The plans on offer: sizes, terms, sites, images and prices (euros HT, R8.3-ht)."""
    with _api(profile) as client:
        items = client.list_plans(include_retired=include_retired)
    if output is Output.json:
        _print_json(items)
    else:
        _print_table(_plan_table(items, include_retired))


@vps_app.command("create")
def vps_create(
    name: Annotated[str, typer.Argument(help="The hostname: lowercase letters, digits and '-'")],
    image: Annotated[str, typer.Option(help="The OS image (e.g. debian-12; one the plan offers)")],
    plan: Annotated[str | None, typer.Option(help="The plan to order (vpsctl plan list): its code or id")] = None,
    term: Annotated[int | None, typer.Option(help="The initial term in months, one the plan offers (R3-terms)")]
    = None,
    billing_period: Annotated[str | None, typer.Option(
        help="monthly (default), quarterly, half-yearly or yearly (R8.6-billing)")] = None,
    site: Annotated[str | None, typer.Option(
        help="The data-centre site (R2-locations); needed when the plan names sites")] = None,
    ssh_key: KeysOpt = None,
    customer: Annotated[str | None, typer.Option(help="Staff: the customer it is for")] = None,
    placement_group: Annotated[str | None, typer.Option(help="Never on the same host as this group's VPS")] = None,
    unbilled: Annotated[bool, typer.Option(
        "--unbilled", help="Staff: make it without an order (no subscription, no invoice); needs --reason, "
                           "--customer and the sizes")] = False,
    reason: Annotated[str | None, typer.Option(help="With --unbilled: why it is made without an order "
                                                    "(recorded in the VPS's events)")] = None,
    vcpus: Annotated[int | None, typer.Option(min=1, help="With --unbilled: virtual CPUs")] = None,
    memory: Annotated[int | None, typer.Option("--memory", min=64, help="With --unbilled: memory in MiB")] = None,
    disk: Annotated[int | None, typer.Option("--disk", min=1, help="With --unbilled: root disk in GiB")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="The same key again answers the first order")] = None,
    profile: ProfileOpt = None, output: OutputOpt = Output.table, wait: WaitOpt = False, timeout: TimeoutOpt = None,
) -> None:
    """Order a VPS from a plan (POST /v1/orders: the VPS, its subscription and first invoice,
    R8.1-setup-fee), or, staff, make one without an order with --unbilled (POST /v1/vps).  Answers
    at once with the order and the create job; --wait follows it and shows the VPS."""
    keys = _keys(ssh_key)
    if not keys:
        _fail("give at least one --ssh-key (a public key, or a file such as ~/.ssh/id_ed25519.pub)", 2)
    sizes = {"vcpus": vcpus, "memory_mib": memory, "disk_gib": disk}
    common: JSON = {"name": name, "image": image, "ssh_keys": keys}
    for key, value in (("customer", customer), ("site", site), ("placement_group", placement_group)):
        if value is not None:
            common[key] = value
    if unbilled:
        if plan is not None or term is not None or billing_period is not None:
            _fail("--unbilled makes a VPS without an order: no --plan, --term or --billing-period", 2)
        missing = [option for option, value in (("--reason", reason and reason.strip()), ("--customer", customer),
                                                ("--vcpus", vcpus), ("--memory", memory), ("--disk", disk))
                   if not value]
        if missing:
            _fail(f"--unbilled needs {', '.join(missing)} (a VPS without an order is not billed: say why and "
                  "for whom; customers order with --plan and --term)", 2)
        body: JSON = {**common, **sizes, "reason": reason}
    else:
        given = [option for option, value in (("--vcpus", vcpus), ("--memory", memory), ("--disk", disk),
                                              ("--reason", reason)) if value is not None]
        if given:
            _fail(f"{', '.join(given)}: only with --unbilled (an order takes its sizes from the plan)", 2)
        if plan is None or term is None:
            _fail("give --plan and --term (vpsctl plan list shows what may be ordered); staff making a VPS "
                  "without an order: --unbilled --reason ... --customer ...", 2)
        body = {**common, "plan": plan, "term_months": term,
                **({"billing_period": billing_period} if billing_period else {})}
    with _api(profile) as client:
        if unbilled:
            answer = client.create_unbilled(body, idempotency_key=idempotency_key)
        else:
            answer = client.order(body, idempotency_key=idempotency_key)
        vps_id = str(answer["vps"]["id"])
        ordered = {k: answer[k] for k in ("order", "subscription", "invoice") if k in answer}
        if output is Output.json and not wait:
            _print_json(answer)
            return
        if output is Output.table and ordered:
            _print_table(_order_detail(answer))
        err.print(Text(f"VPS {vps_id} ({name}) {answer['vps'].get('status')}"
                       f"{'; not billed (made without an order)' if unbilled else ''}"))
        if not wait:
            _accepted(answer, output)
            return
        job = _watch(client, answer["job"], timeout)
        result = client.get_vps(vps_id) if job.get("status") == "succeeded" else None
        if output is Output.json:
            _print_json({**ordered, **({"vps": result} if result else {}), "job": job})
        elif result:
            _print_table(_vps_detail(result))
        _finish(job)


@vps_app.command("resize")
def vps_resize(
    vps_id: VpsArg,
    vcpus: Annotated[int | None, typer.Option(min=1, help="New number of vCPUs")] = None,
    memory: Annotated[int | None, typer.Option("--memory", min=64, help="New memory in MiB")] = None,
    disk: Annotated[int | None, typer.Option("--disk", min=1, help="New root disk size in GiB (never smaller)")] = None,
    reason: Annotated[str | None, typer.Option(
        help="Staff: the rule the resize is made under (R5.1-change-order: a customer's resize is a change "
             "order)")] = None,
    profile: ProfileOpt = None, output: OutputOpt = Output.table, wait: WaitOpt = False, timeout: TimeoutOpt = None,
) -> None:
    """Resize a VPS (staff); the API says beforehand whether it is live or needs a reboot."""
    if vcpus is None and memory is None and disk is None:
        _fail("give at least one of --vcpus, --memory, --disk", 2)
    with _api(profile) as client:
        answer = client.resize(vps_id, vcpus=vcpus, memory_mib=memory, disk_gib=disk, reason=reason)
        _job_started(client, answer, output, wait, timeout, after=lambda: client.get_vps(vps_id))


@vps_app.command("suspend")
def vps_suspend(
    vps_id: VpsArg,
    reason: Annotated[str | None, typer.Option(help="customer (default); staff: billing, abuse, security")] = None,
    profile: ProfileOpt = None, output: OutputOpt = Output.table, wait: WaitOpt = False, timeout: TimeoutOpt = None,
) -> None:
    """Pause a running VPS (its memory kept)."""
    with _api(profile) as client:
        _job_started(client, client.suspend(vps_id, reason), output, wait, timeout)


@vps_app.command("resume")
def vps_resume(vps_id: VpsArg, profile: ProfileOpt = None, output: OutputOpt = Output.table, wait: WaitOpt = False,
               timeout: TimeoutOpt = None) -> None:
    """Resume a suspended VPS."""
    with _api(profile) as client:
        _job_started(client, client.resume(vps_id), output, wait, timeout)


def _confirmed(client: Client, vps_id: str, yes: bool, confirm: str | None, what: str) -> None:
    """The data-destroying operations are sent with the API's confirmation (``confirm_data_loss``)
    only when the person confirmed: ``--yes``, ``--confirm NAME`` (the VPS's name), or the name
    typed at the prompt.  Nothing is sent otherwise."""
    if yes:
        return
    name = str(client.get_vps(vps_id).get("name"))
    if confirm is None:
        if not sys.stdin.isatty():
            _fail(f"{what} erases the VPS's data for good: confirm with --confirm {name} or --yes", 2)
        confirm = typer.prompt(f"{what} erases the data of VPS {vps_id} for good; type its name ({name}) to confirm")
    if confirm != name:
        _fail(f"not confirmed: the VPS's name is {name!r}, not {confirm!r}; nothing was asked", 2)


@vps_app.command("reinstall")
def vps_reinstall(
    vps_id: VpsArg, ssh_key: KeysOpt = None,
    image: Annotated[str | None, typer.Option(help="Default: the OS the VPS was ordered with")] = None,
    keep_old_disk: Annotated[bool, typer.Option(help="Keep the old root disk as a backup")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm that the disk is erased")] = False,
    confirm: Annotated[str | None, typer.Option(help="Confirm by giving the VPS's name")] = None,
    profile: ProfileOpt = None, output: OutputOpt = Output.table, wait: WaitOpt = False, timeout: TimeoutOpt = None,
) -> None:
    """Reinstall the VPS's OS on a new disk (its data is erased; new host key and root keys)."""
    keys = _keys(ssh_key)
    if not keys:
        _fail("give at least one --ssh-key for root on the new system", 2)
    with _api(profile) as client:
        _confirmed(client, vps_id, yes, confirm, "reinstall")
        answer = client.reinstall(vps_id, keys, confirm_data_loss=True, image=image, keep_old_disk=keep_old_disk)
        _job_started(client, answer, output, wait, timeout, after=lambda: client.get_vps(vps_id))


@vps_app.command("delete")
def vps_delete(
    vps_id: VpsArg,
    keep_backup: Annotated[list[str] | None, typer.Option(help="A backup to keep (repeat for several)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm that the VPS and its data go for good")] = False,
    confirm: Annotated[str | None, typer.Option(help="Confirm by giving the VPS's name")] = None,
    profile: ProfileOpt = None, output: OutputOpt = Output.table, wait: WaitOpt = False, timeout: TimeoutOpt = None,
) -> None:
    """Delete a VPS: its disks, backups and exports (but those kept) are discarded."""
    with _api(profile) as client:
        _confirmed(client, vps_id, yes, confirm, "delete")
        answer = client.delete_vps(vps_id, confirm_data_loss=True, keep_backups=keep_backup)
        _job_started(client, answer, output, wait, timeout)


@vps_app.command("console")
def vps_console(
    vps_id: VpsArg,
    info: Annotated[bool, typer.Option("--info", help="Print how to connect (no token) instead of attaching")] = False,
    linger: Annotated[float, typer.Option(
        help="When standard input is not a terminal: seconds to keep printing the guest's output after it "
             "ends")] = 2.0,
    profile: ProfileOpt = None,
) -> None:
    """Attach to the VPS's serial console (a WebSocket the API opens to the guest's serial port).

    On a terminal: raw mode, Ctrl-] detaches.  Otherwise standard input is sent to the guest and
    its output printed until --linger seconds after the input ends."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    with _api(profile) as client:
        url = client.console_url(vps_id)
        if info:
            sys.stdout.write(f"{url}\nWebSocket; send the header 'Authorization: Bearer <your token>'. Binary "
                             "messages carry the guest's serial output; send text or binary to type.\n")
            return
        try:
            socket = connect(url, additional_headers={"Authorization": f"Bearer {client.token}"},
                             open_timeout=30, max_size=None)
        except InvalidStatus as exc:
            vps = client.get_vps(vps_id)  # a VPS one may not see is an ApiError (404) here
            status = vps.get("status")
            reason = (f"the VPS is {status} (a console needs it running, cut off or suspended)"
                      if status not in ("running", "cut_off", "suspended")
                      else "this token may not open it (customers: their own VPS; automation: vps:write)")
            _fail(f"the console was refused (HTTP {exc.response.status_code}): {reason}")
        except (OSError, WebSocketException) as exc:
            _fail(f"the console did not open: {exc}")
        with socket:
            err.print(f"connected to the console of {vps_id}" +
                      (" (Ctrl-] detaches)" if sys.stdin.isatty() else ""))
            try:
                if sys.stdin.isatty():
                    _attach_terminal(socket)
                else:
                    _pipe_stdin(socket, linger)
            except ConnectionClosed:
                err.print("the console was closed by the server")


def _to_stdout(data: str | bytes) -> None:
    sys.stdout.buffer.write(data if isinstance(data, bytes) else data.encode())
    sys.stdout.buffer.flush()


def _pipe_stdin(socket: Any, linger: float) -> None:
    """Standard input to the guest, its output to standard output until ``linger`` s after EOF."""
    from websockets.exceptions import ConnectionClosed

    done = threading.Event()

    def send() -> None:
        try:
            while chunk := os.read(sys.stdin.fileno(), 4096):
                socket.send(chunk)
        except (OSError, ConnectionClosed):
            pass
        finally:
            done.set()

    threading.Thread(target=send, daemon=True).start()
    quiet_until: float | None = None
    while True:
        if done.is_set() and quiet_until is None:
            quiet_until = time.monotonic() + linger
        if quiet_until is not None and time.monotonic() >= quiet_until:
            return
        try:
            _to_stdout(socket.recv(timeout=0.2))
        except TimeoutError:
            continue


def _attach_terminal(socket: Any) -> None:
    """Raw terminal <-> console until Ctrl-] or the server closes."""
    import termios
    import tty

    from websockets.exceptions import ConnectionClosed

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    closed = threading.Event()

    def receive() -> None:
        try:
            for message in socket:
                _to_stdout(message)
        except ConnectionClosed:
            pass
        finally:
            closed.set()

    tty.setraw(fd, termios.TCSADRAIN)  # not TCSAFLUSH (the default): what was typed meanwhile is kept
    try:
        threading.Thread(target=receive, daemon=True).start()
        while not closed.is_set():
            chunk = os.read(fd, 1024)
            if not chunk or DETACH in chunk:
                before = chunk.split(DETACH, 1)[0]
                if before:
                    socket.send(before)
                break
            socket.send(chunk)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        sys.stderr.write("\r\ndetached\r\n")


# --- jobs -----------------------------------------------------------------------------------


@job_app.command("watch")
def job_watch(
    job_id: Annotated[str, typer.Argument(help="The job's id (printed by the command that started it)")],
    profile: ProfileOpt = None, output: OutputOpt = Output.table, timeout: TimeoutOpt = None,
) -> None:
    """Follow a job with a progress bar and its events until it ends; exit status 1 if it failed."""
    with _api(profile) as client:
        job = _watch(client, client.get_job(job_id), timeout)
    if output is Output.json:
        _print_json(job)
    _finish(job)


@job_app.command("show")
def job_show(
    job_id: Annotated[str, typer.Argument(help="The job's id")],
    profile: ProfileOpt = None, output: OutputOpt = Output.table,
) -> None:
    """A job as it is now, with its events."""
    with _api(profile) as client:
        job = client.get_job(job_id)
    if output is Output.json:
        _print_json(job)
        return
    _print_table(_job_table(job))
    done = job.get("progress") or {}
    sys.stdout.write(f"progress {done.get('done')}/{done.get('total')}"
                     f"{' at ' + str(done['step']) if done.get('step') else ''}"
                     f"{'; error: ' + str(job['error']) if job.get('error') else ''}\n")


# --- profiles -------------------------------------------------------------------------------


@profile_app.command("add")
def profile_add(
    name: Annotated[str, typer.Argument(help="The profile's name (e.g. prod)")],
    url: Annotated[str, typer.Option(help="The API's address, e.g. https://vps.example.net")],
    token: Annotated[str | None, typer.Option(
        envvar="VPSCTL_TOKEN", show_envvar=False,
        help="The bearer token (better: left out, then asked without echo on a terminal or read from the first "
             "line of standard input; VPSCTL_TOKEN); never printed")] = None,
    default: Annotated[bool, typer.Option(help="Use it when no profile is named and VPSCTL_API_URL is unset")]
    = False,
) -> None:
    """Add (or replace) a profile in the configuration file."""
    if token is None:
        token = (typer.prompt("Token", hide_input=True) if sys.stdin.isatty()
                 else sys.stdin.readline())  # piped: `pass show vps/prod | vpsctl profile add prod --url ...`
    try:
        config = profiles.load()
        profile = profiles.Profile(profiles.check_name(name), profiles.check_url(url), token.strip())
        if not profile.token:
            raise profiles.ProfileError("the token is empty")
        replaced = name in config.profiles
        config.profiles[name] = profile
        if default or not config.default:
            config.default = name
        profiles.save(config)
    except (profiles.ProfileError, OSError) as exc:
        _fail(str(exc))
    err.print(Text(f"profile {name} {'replaced' if replaced else 'added'} in {config.path}"
                   f"{' (default)' if config.default == name else ''}"))


@profile_app.command("list")
def profile_list(output: OutputOpt = Output.table) -> None:
    """The profiles (their tokens are never shown)."""
    try:
        config = profiles.load()
    except profiles.ProfileError as exc:
        _fail(str(exc))
    rows = [{"name": p.name, "url": p.url, "default": p.name == config.default} for p in config.profiles.values()]
    if output is Output.json:
        _print_json(rows)
        return
    table = Table("name", "url", "default", "token", title=str(config.path), title_justify="left")
    for row in rows:
        table.add_row(_text(row["name"]), _text(row["url"]), Text("yes" if row["default"] else ""), Text("(set)"))
    _print_table(table)


@profile_app.command("remove")
def profile_remove(name: Annotated[str, typer.Argument(help="The profile to remove")]) -> None:
    """Remove a profile (and its token) from the configuration file."""
    try:
        config = profiles.load()
        if name not in config.profiles:
            raise profiles.ProfileError(f"no profile {name!r} in {config.path}")
        del config.profiles[name]
        if config.default == name:
            config.default = None
        profiles.save(config)
    except (profiles.ProfileError, OSError) as exc:
        _fail(str(exc))
    err.print(Text(f"profile {name} removed from {config.path}"))
