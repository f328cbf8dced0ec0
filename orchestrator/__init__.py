"""vpsctl: provision VPS on libvirt hosts and run their lifecycle under the hosting contract.

The packages, from the bottom up; each may import only those below it (pyproject.toml's
import-linter contracts keep it so, and ``tests/unit/test_layers.py`` finds no import cycle):

    cli            the command line (the only part of ``orchestrator`` that may start the HTTP edge)
    workflows      the contract's workflows and the periodic duties, built on operations' events
    operations     one module per operation; ``operations.steps`` the steps several share
    engine         durable jobs, the worker, operations' shape and lifecycle events, periodic ticks
    compute | notify   what VPS become on hosts (designer, placement, hosts, images, keys, seeds)
                   | email notices through an outbox
    hypervisor | adapters   the seams to the outside: libvirt | SSH, HTTP fetches, Ansible
    contract       the contract's rules as pure functions (no I/O)
    core           records: tables, settings, clock, errors, database, principals, who sees what

The HTTP edge (``api``) stands beside ``cli`` on top; ``orchestrator`` never imports it (but
``orchestrator.cli`` to serve it).  docs/architecture.md tells how a request flows through them.
"""

__version__ = "0.1.0"
