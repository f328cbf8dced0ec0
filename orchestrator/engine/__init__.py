"""The job engine: durable jobs under leases (``jobs``), the worker that runs them (``worker``),
what every operation is made of and the one way to ask for one (``operation``, ``context``),
the lifecycle events workflows subscribe to (``events``), and the periodic duties' ticker
(``ticker``).

May import ``core``, ``contract``, ``compute`` and ``hypervisor``; knows no operation and no
workflow by name: they register themselves.
"""
