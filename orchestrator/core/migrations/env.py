"""Alembic environment: always online, on the connection (and transaction) that
``orchestrator.core.migrations`` opened and locked; the target is the models' metadata."""

from __future__ import annotations

from alembic import context

from orchestrator.core.migrations import TARGET, render_item

if context.is_offline_mode():
    raise RuntimeError("vpsctl migrations run on a live connection only (vpsctl db upgrade)")

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=TARGET,
    render_as_batch=True,  # SQLite alters most things by copying the table; batch mode does that
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
