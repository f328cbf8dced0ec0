"""An export is offered for download only once its file is complete on the control plane: a
fetch that has not happened yet (the host's stream broke, the job will try again) leaves it
``creating``, without a download link, and its download refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from orchestrator.core.errors import TransientError
from tests.api.fakeworld import make_world
from tests.fakes import FakeDriver


class BrokenDownload(FakeDriver):
    """The host copies the disk, but its stream to the control plane breaks."""

    def download_volume(self, pool: str, name: str) -> Iterator[bytes]:
        raise TransientError("the stream was cut")


def test_an_export_is_not_offered_before_its_file_is_there(tmp_path: Path) -> None:
    world = make_world(tmp_path, "exports", lambda uri, host: BrokenDownload(uri, host))
    api = world.api
    asked = api.call("POST", f"/v1/vps/{world.vps_id}/export", api.alice, json={})
    assert asked.status_code == 202, asked.text
    world.run()  # the copy is made, the fetch fails and waits for its next attempt
    job = api.call("GET", f"/v1/jobs/{asked.json()['job']['id']}", api.support).json()
    assert job["status"] == "queued" and any(e["step"] == "fetch_export" and "stream was cut" in e["message"]
                                            for e in job["events"]), job
    exports = [b for b in api.call("GET", f"/v1/vps/{world.vps_id}/backups", api.alice).json()["items"]
               if b["kind"] == "export"]
    assert len(exports) == 2  # the root disk and the world's data disk, both copied on the host
    for export in exports:
        assert export["status"] == "creating" and export["download"] is None
        refused = api.call("GET", f"/v1/vps/{world.vps_id}/backups/{export['id']}/download", api.alice)
        assert refused.status_code == 404, refused.text


