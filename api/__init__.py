"""The HTTP edge of vpsctl: routes (``routers``), request and answer bodies (``schemas``),
authentication and the request's unit of work (``deps``), the handler shape of every operation
(``operations``), records to bodies (``views``), problem+json (``errors``).  Handlers parse, call
the core, and answer; they never talk to a hypervisor (but the serial console's live pipe).

May import ``orchestrator`` but ``orchestrator.cli``."""
