"""The OpenAPI document holds for every role: schemathesis generates requests from it (valid and
invalid ones) and checks every answer against it with all its checks (status declared, problem
schema, headers, content type, no server error), in process against the fake world
(tests/api/fakeworld.py)."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.fakeworld import World, make_world

EXAMPLES = int(os.environ.get("VPSCTL_SCHEMATHESIS_EXAMPLES", "6"))

# The document bounds its dates with formatMinimum/formatMaximum (api/schemas/types.py: 2000 to
# 2199), keywords schemathesis does not read: its dates and instants are drawn within them.
schemathesis.openapi.format("date", st.dates(date(2000, 1, 1), date(2199, 12, 31)).map(date.isoformat))
schemathesis.openapi.format("date-time", st.datetimes(datetime(2000, 1, 2), datetime(2199, 12, 30),
                                                      timezones=st.just(UTC)).map(datetime.isoformat))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("schemathesis"), "world")


def known_ids(world: World) -> dict[str, str]:
    """Path parameters that name something of the world (alice's VPS, its backup and disk)."""
    return {"vps_id": world.vps_id, "backup_id": world.backup_id, "disk_id": world.disk_id, "host": "h1",
            "customer": "alice"}


def call(case: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    """The case called and checked with every check of schemathesis, but that schema-valid data
    is always accepted: a valid request may still be refused by a rule of the contract or of the
    world (an unknown image, a VPS in the wrong state: 422, 409), which no schema says.  What must
    never happen is the server's own validation refusing what the schema allows: that 422 lists
    `errors` (api/errors.py), and is a failure here."""
    response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
    if mode is GenerationMode.POSITIVE and response.status_code == 422:
        problem = response.json()
        assert "errors" not in problem, f"schema-valid request refused by validation: {problem}"


def run(world: World, mode: GenerationMode) -> tuple[Counter[str], list[str]]:
    """Every operation, ``EXAMPLES`` cases each, called as each role; (cases per role, failures)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.api.client.app)
    tokens = {"anonymous": None, "alice": world.api.alice, "bob": world.api.bob, "support": world.api.support}
    known = known_ids(world)
    calls: Counter[str] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],  # no shrinking: the failure as found
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            for role, token in tokens.items():
                calls[role] += 1
                call(case, mode, {"Authorization": f"Bearer {token}"} if token else {})
            if mode is GenerationMode.POSITIVE and any(name in known for name in case.path_parameters or {}):
                case.path_parameters = {name: known.get(name, value) for name, value in case.path_parameters.items()}
                for role in ("alice", "support"):
                    calls[role + " (known ids)"] += 1
                    call(case, mode, {"Authorization": f"Bearer {tokens[role]}"})

        try:
            check()
        except Unsatisfiable:  # an operation without parameters has no invalid request
            calls["operations without invalid requests"] += 1
        except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; failures reported together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    return calls, failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_answer_conforms_for_every_role(world: World, mode: GenerationMode) -> None:
    calls, failures = run(world, mode)
    print(f"schemathesis {mode.value}: {dict(calls)}, {len(failures)} failing operations")
    assert sum(calls.values()) > 400
    assert failures == [], "\n\n".join(failures)
