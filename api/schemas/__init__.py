"""The HTTP edge's request and answer bodies, one module per resource.  The bodies of operations
are the operations' own parameter models (orchestrator/operations); these are the rest."""
