"""Every route of the API declares which automation tokens may call it (api/scopes.py): an
application with a route that does not is refused when it is built, so a new route cannot be
open to every automation token by omission."""

from __future__ import annotations

import re
from typing import get_args

import pytest
from fastapi import APIRouter


def test_a_route_without_a_scope_declaration_is_refused() -> None:
    from api.scopes import check_declared, no_automation, scoped

    undeclared = APIRouter(prefix="/v1/things")
    undeclared.add_api_route("", lambda: None, methods=["GET"])
    with pytest.raises(RuntimeError, match="GET /v1/things"):
        check_declared(undeclared.routes, public=[])
    check_declared(undeclared.routes, public=["/v1/things"])  # a public path needs none

    no_such_scope = APIRouter(prefix="/v1/reports", dependencies=[scoped("reports")])
    no_such_scope.add_api_route("/{report_id}/send", lambda: None, methods=["POST"])  # there is no reports:write
    with pytest.raises(RuntimeError, match=re.escape("POST /v1/reports/{report_id}/send")):
        check_declared(no_such_scope.routes, public=[])

    declared = APIRouter(prefix="/v1/maintenance", dependencies=[scoped("maintenance")])
    declared.add_api_route("", lambda: None, methods=["GET"])
    declared.add_api_route("", lambda: None, methods=["POST"])
    closed = APIRouter(prefix="/v1/tokens", dependencies=[no_automation("never")])
    closed.add_api_route("", lambda: None, methods=["POST"])
    check_declared([*declared.routes, *closed.routes], public=[])


def test_customers_languages_are_those_of_the_notices() -> None:
    from api.schemas.accounts import CustomerBody
    from orchestrator.core.accounts import LANGUAGES
    from orchestrator.notify.templates import LANGUAGES as NOTICE_LANGUAGES

    assert LANGUAGES == NOTICE_LANGUAGES == ("fr", "en")
    assert get_args(CustomerBody.model_fields["language"].annotation) == ("fr", "en")
