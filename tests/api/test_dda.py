"""R2-dda through the API: the Statement of Applicability is disclosed only on the client's
request, after the security officer's approval and a signed NDA. The download is refused naming
the rule, with the missing gates, until both are recorded; only staff record them; every step
and download is in the request's history; another client's request is a 404 (R7-confidential)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from orchestrator.core.models import Audit, DdaRequest
from tests.conftest import Api

DOCUMENT = b"%PDF-1.4 Declaration d'Applicabilite ISO 27001, version 7\n"


@pytest.fixture
def api(offline_api: Api, clock: Any, tmp_path: Path) -> Api:
    from tests.api.money import paris

    clock.travel_to(paris(2026, 5, 13, 10, 0))
    document = tmp_path / "dda-v7.pdf"
    document.write_bytes(DOCUMENT)
    offline_api.settings.contract.dda_document_path = document
    return offline_api


def ask(api: Api, token: str | None = None, purpose: str = "supplier security review") -> Any:
    return api.call("POST", "/v1/dda-requests", token or api.alice, json={"purpose": purpose})


def approve(api: Api, request_id: str, **body: Any) -> Any:
    return api.call("POST", f"/v1/dda-requests/{request_id}/approval", api.support,
                    json={"approved": True, "officer": "M. Durand (RSSI)", **body})


def nda(api: Api, request_id: str, **body: Any) -> Any:
    return api.call("POST", f"/v1/dda-requests/{request_id}/nda", api.support,
                    json={"reference": "NDA-2026-014", "signed_on": "2026-05-12", **body})


def missing(refused: Any) -> str:
    """The gates a R2-dda refusal says are missing."""
    return str(refused.json()["detail"]).split("missing: ", 1)[1]


def download(api: Api, request_id: str, token: str | None = None) -> Any:
    return api.call("GET", f"/v1/dda-requests/{request_id}/document", token or api.alice)


def test_the_document_is_given_only_after_approval_and_nda(api: Api) -> None:
    created = ask(api)
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["approval"] == "pending" and request["document_available"] is False
    assert [h["action"] for h in request["history"]] == ["dda.requested"]

    neither = download(api, request["id"])
    assert neither.status_code == 422 and neither.json()["rule"] == "R2-dda"
    assert missing(neither) == "the security officer's approval; a signed NDA"

    assert approve(api, request["id"]).status_code == 200
    no_nda = download(api, request["id"])
    assert no_nda.status_code == 422 and no_nda.json()["rule"] == "R2-dda"
    assert missing(no_nda) == "a signed NDA"

    signed = nda(api, request["id"])
    assert signed.status_code == 200, signed.text
    assert signed.json()["document_available"] is True and signed.json()["missing"] == []
    got = download(api, request["id"])
    assert got.status_code == 200 and got.content == DOCUMENT

    view = api.call("GET", f"/v1/dda-requests/{request['id']}", api.alice).json()
    assert [h["action"] for h in view["history"]] == [
        "dda.requested", "dda.approved", "dda.nda_recorded", "dda.downloaded"]
    assert view["officer"] == "M. Durand (RSSI)" and view["decided_at"] is not None
    assert view["nda_reference"] == "NDA-2026-014" and view["nda_signed_on"] == "2026-05-12"
    assert view["history"][1]["actor"].startswith("support:")
    assert "M. Durand" in view["history"][1]["detail"]
    assert view["history"][3]["actor"].startswith("customer:")
    # a second download is recorded too
    assert download(api, request["id"]).status_code == 200
    with Session(api.engine) as session:
        downloads = session.exec(select(Audit).where(Audit.action == "dda.downloaded",
                                                     col(Audit.detail).startswith(request["id"]))).all()
        assert len(downloads) == 2


def test_nda_first_then_approval_also_opens_it(api: Api) -> None:
    request = ask(api).json()
    assert nda(api, request["id"]).status_code == 200
    only_nda = download(api, request["id"])
    assert only_nda.status_code == 422 and missing(only_nda) == "the security officer's approval"
    assert approve(api, request["id"]).status_code == 200
    assert download(api, request["id"]).content == DOCUMENT


def test_a_refusal_keeps_it_closed(api: Api) -> None:
    request = ask(api).json()
    no_reason = approve(api, request["id"], approved=False)
    assert no_reason.status_code == 422
    refused = approve(api, request["id"], approved=False, reason="not a customer of the hosted service")
    assert refused.status_code == 200 and refused.json()["approval"] == "refused"
    assert nda(api, request["id"]).status_code == 409
    assert approve(api, request["id"]).status_code == 409  # decided once
    closed = download(api, request["id"])
    assert closed.status_code == 422 and closed.json()["rule"] == "R2-dda"
    assert missing(closed).startswith("the security officer refused it (not a customer")
    history = api.call("GET", f"/v1/dda-requests/{request['id']}", api.alice).json()["history"]
    assert [h["action"] for h in history] == ["dda.requested", "dda.refused"]
    assert "not a customer" in history[1]["detail"]


def test_who_may_do_what(api: Api) -> None:
    request = ask(api).json()
    # a customer cannot approve nor record the NDA, even for their own request
    assert api.call("POST", f"/v1/dda-requests/{request['id']}/approval", api.alice,
                    json={"approved": True, "officer": "me"}).status_code == 403
    assert api.call("POST", f"/v1/dda-requests/{request['id']}/nda", api.alice,
                    json={"reference": "x", "signed_on": "2026-05-12"}).status_code == 403
    # another customer sees nothing of it
    for method, path in (("GET", ""), ("GET", "/document")):
        assert api.call(method, f"/v1/dda-requests/{request['id']}{path}", api.bob).status_code == 404
    assert api.call("GET", "/v1/dda-requests", api.bob).json()["items"] == []
    assert [r["id"] for r in api.call("GET", "/v1/dda-requests", api.alice).json()["items"]] == [request["id"]]
    assert [r["id"] for r in api.call("GET", "/v1/dda-requests", api.support).json()["items"]] == [request["id"]]
    # staff do not request it, nor download it in the client's place
    assert ask(api, api.support).status_code == 403
    approve(api, request["id"])
    nda(api, request["id"])
    assert download(api, request["id"], api.support).status_code == 403
    assert api.call("GET", "/v1/dda-requests/nope", api.support).status_code == 404


def test_bad_input_changes_nothing(api: Api) -> None:
    assert ask(api, purpose="").status_code == 422
    assert ask(api, purpose="   ").status_code == 422
    assert api.call("POST", "/v1/dda-requests", api.alice, json={"purpose": "x", "extra": 1}).status_code == 422
    with Session(api.engine) as session:
        assert session.exec(select(DdaRequest)).all() == []
    request = ask(api).json()
    assert approve(api, request["id"], officer="").status_code == 422
    assert nda(api, request["id"], signed_on="2026-05-14").status_code == 422  # in the future
    assert nda(api, request["id"], reference=" ").status_code == 422
    view = api.call("GET", f"/v1/dda-requests/{request['id']}", api.alice).json()
    assert view["approval"] == "pending" and view["nda_reference"] is None
    assert [h["action"] for h in view["history"]] == ["dda.requested"]
    assert nda(api, request["id"]).status_code == 200
    assert nda(api, request["id"], reference="NDA-other").status_code == 409


def test_no_document_configured_is_a_404(api: Api) -> None:
    request = ask(api).json()
    approve(api, request["id"])
    nda(api, request["id"])
    api.settings.contract.dda_document_path = None
    missing = download(api, request["id"])
    assert missing.status_code == 404
    history = api.call("GET", f"/v1/dda-requests/{request['id']}", api.alice).json()["history"]
    assert "dda.downloaded" not in [h["action"] for h in history]
