"""The audit log is append-only in the database itself (migration 0013's triggers): a row is
added, never changed nor deleted, whatever code or person holds a connection; on SQLite and on a
real PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import DatabaseError

from orchestrator.core import migrations
from orchestrator.core.db import make_engine
from orchestrator.core.settings import Settings


@pytest.mark.parametrize("made", ["created from the models", "upgraded revision by revision"])
def test_audit_rows_are_added_but_never_changed_or_deleted(settings: Settings, made: str) -> None:
    if made.startswith("upgraded"):
        engine = make_engine(settings, upgrade=False)
        with engine.connect() as conn:
            command.upgrade(migrations.alembic_config(conn), "head")
            conn.commit()
    else:
        engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO audit (at, actor, action, detail) "
                                 "VALUES (CURRENT_TIMESTAMP, 'support:eve', 'delete_vps', 'DELETE /v1/vps/x')"))
        for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit",
                          "UPDATE audit SET result = 202 WHERE action = 'delete_vps'"):
            with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text(statement))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT actor, action, result FROM audit")).all() == [
                ("support:eve", "delete_vps", None)]
    finally:
        engine.dispose()
