"""What a VPS becomes on a hypervisor host, decided from the records: domain definitions
(``designer``, policy kept apart from the XML objects of ``orchestrator.hypervisor``), placement
(pure), the hosts and their drivers (``hosts``), guest images, SSH host keys and NoCloud seeds.

May import ``core``, ``contract`` and ``hypervisor``.
"""
