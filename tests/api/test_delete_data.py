"""After a delete nothing of the client's data remains (R10-after), unless they named backups to
keep: those stay listed and downloadable by their owner only, can be discarded by them, and are
erased with the rest of their data — five days after a formal notice to pay (R8.7-default) or as
the contract ends (R10-after).  Run end to end (API, worker, the operations' own code) on the
in-memory hypervisor of tests/fakes.py; tests/integration/test_create_delete.py shows the same
backup pool emptied on the real libvirtd."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from orchestrator.core.models import Backup, Erasure, Job, Outbox, PaymentDefault
from tests.api.fakeworld import World, make_world
from tests.api.money import paris, subscribe


def copies(world: World) -> set[str]:
    """The VPS's volumes in the backup pool, as the hypervisor holds them."""
    pool = world.host.pools.get(world.api.settings.hosts.backup_pool, {})
    return {name for name in pool if name.startswith(f"vps-{world.vps_id}")}


def copy_of(world: World, backup_id: str) -> str:
    return f"vps-{world.vps_id}-backup-{backup_id}.qcow2"


def exported_files(world: World) -> set[str]:
    exports = world.api.settings.state_dir / "exports"
    return {p.name for p in exports.iterdir()} if exports.is_dir() else set()


def statuses(world: World) -> dict[str, str]:
    with Session(world.api.engine) as session:
        return {b.id: b.status for b in session.exec(select(Backup).where(Backup.vps_id == world.vps_id)).all()}


def exported(world: World) -> tuple[str, str]:
    """An export of the VPS (root disk and its data disk): the root copy's id, the data disk's."""
    asked = world.api.call("POST", f"/v1/vps/{world.vps_id}/export", world.api.alice)
    assert asked.status_code == 202, asked.text
    world.run()
    export_id = asked.json()["job"]["id"]
    [disk_copy] = set(statuses(world)) - {world.backup_id, export_id}
    return export_id, disk_copy


def delete(world: World, *keep: str) -> Any:
    query = "".join(f"&keep_backups={backup_id}" for backup_id in keep)
    return world.api.call("DELETE", f"/v1/vps/{world.vps_id}?confirm_data_loss=true{query}", world.api.alice)


def test_a_delete_leaves_no_backup_no_export_and_no_download(tmp_path: Path, clock: Any) -> None:
    world = make_world(tmp_path, "w", unbilled=True)
    export_id, disk_copy = exported(world)
    every = {world.backup_id, export_id, disk_copy}
    assert copies(world) == {copy_of(world, b) for b in every}
    assert exported_files(world) == {f"{export_id}.qcow2", f"{disk_copy}.qcow2"}

    assert delete(world).status_code == 202
    world.run()

    assert copies(world) == set()
    assert exported_files(world) == set()
    assert statuses(world) == dict.fromkeys(every, "deleted")
    assert world.api.call("GET", "/v1/backups", world.api.alice).json()["items"] == []
    assert world.api.call("GET", f"/v1/vps/{world.vps_id}/backups", world.api.alice).json()["items"] == []
    download = world.api.call("GET", f"/v1/vps/{world.vps_id}/backups/{export_id}/download", world.api.alice)
    assert download.status_code == 404


def test_named_backups_are_kept_listed_owned_and_discarded_by_their_owner(tmp_path: Path, clock: Any) -> None:
    world = make_world(tmp_path, "w", unbilled=True)
    export_id, disk_copy = exported(world)

    assert delete(world, export_id).status_code == 202
    world.run()

    assert world.vps().status == "deleted"
    assert copies(world) == {copy_of(world, export_id)}
    assert exported_files(world) == {f"{export_id}.qcow2"}
    assert statuses(world) == {world.backup_id: "deleted", export_id: "available", disk_copy: "deleted"}
    [kept] = world.api.call("GET", "/v1/backups", world.api.alice).json()["items"]
    assert (kept["id"], kept["vps_id"], kept["vps_deleted"], kept["kind"]) == (export_id, world.vps_id, True, "export")
    download = world.api.call("GET", kept["download"], world.api.alice)
    assert download.status_code == 200 and download.content
    # another customer sees none of it
    assert world.api.call("GET", "/v1/backups", world.api.bob).json()["items"] == []
    assert world.api.call("GET", kept["download"], world.api.bob).status_code == 404
    assert world.api.call("DELETE", f"/v1/vps/{world.vps_id}/backups/{export_id}?confirm_data_loss=true",
                          world.api.bob).status_code == 404
    # staff see it, under its customer
    [seen] = world.api.call("GET", "/v1/backups", world.api.support).json()["items"]
    assert seen["id"] == export_id

    # the owner discards it: only with the confirmation
    unconfirmed = world.api.call("DELETE", f"/v1/vps/{world.vps_id}/backups/{export_id}", world.api.alice)
    assert unconfirmed.status_code == 422
    discarded = world.api.call("DELETE", f"/v1/vps/{world.vps_id}/backups/{export_id}?confirm_data_loss=true",
                               world.api.alice)
    assert discarded.status_code == 202, discarded.text
    world.run()
    assert copies(world) == set() and exported_files(world) == set()
    assert world.api.call("GET", "/v1/backups", world.api.alice).json()["items"] == []


def test_keeping_a_backup_that_is_not_the_vps_s_is_refused_and_deletes_nothing(tmp_path: Path,
                                                                               clock: Any) -> None:
    world = make_world(tmp_path, "w", unbilled=True)
    other = make_world(tmp_path, "other", unbilled=True)  # another VPS's backup is not this one's to keep
    jobs_before = world.jobs()
    for keep in ("no-such-backup", other.backup_id):
        refused = delete(world, keep)
        assert refused.status_code == 422, refused.text
        assert "keep_backups" in refused.json()["detail"]
    assert world.jobs() == jobs_before and world.vps().status == "running"
    assert copies(world) == {copy_of(world, world.backup_id)}


def test_kept_backups_are_erased_five_days_after_a_formal_notice_to_pay(tmp_path: Path, clock: Any) -> None:
    """R8.7-default: a deleted VPS whose client kept a backup still holds their data: a payment
    default asks for its erasure, which runs five days after the notice was sent."""
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    world = make_world(tmp_path, "w", unbilled=True)
    invoice = subscribe(world.api, world.vps_id)["invoice"]["id"]
    assert delete(world, world.backup_id).status_code == 202
    world.run()
    assert copies(world) == {copy_of(world, world.backup_id)}

    clock.travel_to(paris(2026, 5, 20, 10, 0))  # a week after the order: the first invoice is overdue
    declared = world.api.call("POST", f"/v1/invoices/{invoice}/default", world.api.support)
    assert declared.status_code == 201, declared.text
    with Session(world.api.engine) as session:
        [erase_id] = session.exec(select(Job.id).where(Job.vps_id == world.vps_id, Job.kind == "erase")).all()
        default = session.exec(select(PaymentDefault)).one()
        notice = session.get(Outbox, default.notice_outbox_id)
        assert notice is not None
        notice.status, notice.sent_at = "sent", paris(2026, 5, 20, 10, 1)  # as the outbox records a delivery
        session.add(notice)
        session.commit()
    clock.travel_to(paris(2026, 5, 25, 10, 2))  # five days and a minute after the notice
    world.run()

    assert copies(world) == set()
    assert statuses(world)[world.backup_id] == "deleted"
    with Session(world.api.engine) as session:
        assert session.get(Job, erase_id).status == "succeeded"
        [erasure] = session.exec(select(Erasure).where(Erasure.vps_id == world.vps_id)).all()
    assert copy_of(world, world.backup_id) in erasure.volumes


def test_kept_backups_are_erased_as_the_contract_ends(tmp_path: Path, clock: Any) -> None:
    """R10-after: the backups were kept for the time of the contract; its end erases them, and the
    termination notice says so."""
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    world = make_world(tmp_path, "w", unbilled=True)
    subscription = subscribe(world.api, world.vps_id)["subscription"]["id"]
    assert delete(world, world.backup_id).status_code == 202
    world.run()

    ended = world.api.call("POST", f"/v1/subscriptions/{subscription}/terminate", world.api.support,
                           json={"reason": "insolvency"})
    assert ended.status_code == 202, ended.text
    world.run()

    assert copies(world) == set()
    with Session(world.api.engine) as session:
        [erasure] = session.exec(select(Erasure).where(Erasure.vps_id == world.vps_id)).all()
        [notice] = session.exec(select(Outbox).where(Outbox.template == "termination_notice")).all()
    assert erasure.volumes == [copy_of(world, world.backup_id)]
    assert "Les sauvegardes conservées lors de la suppression du serveur (1) sont effacées" in notice.body_text


def test_after_the_contract_no_backup_is_kept_past_the_vps(tmp_path: Path, clock: Any) -> None:
    clock.travel_to(paris(2026, 5, 13, 10, 0))
    world = make_world(tmp_path, "w", unbilled=True)
    subscription = subscribe(world.api, world.vps_id)["subscription"]["id"]
    assert world.api.call("POST", f"/v1/subscriptions/{subscription}/terminate", world.api.support,
                          json={"reason": "insolvency"}).status_code == 202
    world.run()
    refused = delete(world, world.backup_id)
    assert refused.status_code == 422 and refused.json()["rule"] == "R10-after", refused.text
    assert delete(world).status_code == 202  # deleting everything is still the client's to ask
    world.run()
    assert copies(world) == set()


def test_an_export_started_before_the_delete_is_not_left_behind(tmp_path: Path, clock: Any) -> None:
    """Jobs of a VPS run in order: an export asked before the delete runs first, and its copies
    then go with the delete."""
    world = make_world(tmp_path, "w", unbilled=True)
    assert world.api.call("POST", f"/v1/vps/{world.vps_id}/export", world.api.alice).status_code == 202
    assert delete(world).status_code == 202
    world.run()
    assert copies(world) == set() and exported_files(world) == set()
    assert set(statuses(world).values()) == {"deleted"}
