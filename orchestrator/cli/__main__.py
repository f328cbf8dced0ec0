"""``python -m orchestrator.cli``: the same as the ``vpsctl`` command."""

from orchestrator.cli import app

app()
