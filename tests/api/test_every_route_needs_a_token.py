"""Every operation of the OpenAPI document, walked from app.openapi() rather than listed by hand,
needs a valid token: without one, with a malformed one, an unknown one, an expired one or a revoked
one, the answer is a 401 problem+json (``WWW-Authenticate: Bearer``) given before the body is read
or validated, and no row of any table changes.  Only the routes named public below answer
without a token (api/guard.py PUBLIC)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session, SQLModel, func, select, text

from api.guard import PUBLIC as GUARD_PUBLIC
from api.openapi import PROBLEM_MEDIA
from orchestrator.core.auth import create_token, revoke_token
from orchestrator.core.clock import utcnow
from orchestrator.core.models import ApiToken, Role
from tests.conftest import Api

# written out here, not read from the code under test
PUBLIC = {"/healthz", "/docs", "/redoc", "/openapi.json"}


def _rows(api: Api) -> dict[str, int]:
    with Session(api.engine) as session:
        return {name: int(session.exec(select(func.count()).select_from(text(f'"{name}"'))).one())
                for name in SQLModel.metadata.tables}


def _bad_tokens(api: Api) -> dict[str, dict[str, str]]:
    with Session(api.engine) as session:
        expired = create_token(session, Role.customer, "alice", label="expired", days=1)
        revoked = create_token(session, Role.customer, "alice", label="revoked", days=1)
        for record in session.exec(select(ApiToken).where(ApiToken.label == "expired")):
            record.expires_at = utcnow() - timedelta(minutes=1)
            session.add(record)
        record = session.exec(select(ApiToken).where(ApiToken.label == "revoked")).one()
        revoke_token(session, record, "test")
        session.commit()
    return {
        "none": {},
        "empty bearer": {"Authorization": "Bearer "},
        "another scheme": {"Authorization": f"Basic {api.alice}"},
        "malformed": {"Authorization": "Bearer not a token at all"},
        "unknown": {"Authorization": "Bearer " + "x" * 43},
        "expired": {"Authorization": f"Bearer {expired}"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
    }


def test_every_operation_but_the_public_ones_answers_401_without_a_valid_token(offline_api: Api) -> None:
    document = offline_api.client.app.openapi()
    walked = [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]
    assert len(walked) > 80
    bad = _bad_tokens(offline_api)
    before = _rows(offline_api)
    wrong = []
    for method, path in walked:
        if path in PUBLIC:
            continue
        concrete = re.sub(r"\{[^}]+\}", "placeholder", path)
        for why, headers in bad.items():
            # a body that no route would validate: the 401 must come first
            response = offline_api.client.request(method, concrete, headers={
                **headers, "Content-Type": "application/json", "Idempotency-Key": "k1"}, content=b"{not json")
            if response.status_code != 401 or response.headers.get("content-type") != PROBLEM_MEDIA \
                    or response.headers.get("www-authenticate") != "Bearer":
                wrong.append(f"{method} {path} ({why}): {response.status_code} {response.text[:120]}")
    assert wrong == []
    assert _rows(offline_api) == before


def test_the_public_routes_answer_without_a_token_and_are_the_only_ones(offline_api: Api) -> None:
    for path in PUBLIC:
        assert offline_api.client.get(path).status_code == 200, path
    # the guard lets nothing else through (its oauth2-redirect is the /docs page's helper)
    assert GUARD_PUBLIC - {"/docs/oauth2-redirect"} == PUBLIC
