"""Every error the orchestrator raises on purpose, in one tree.

The API maps each class to one HTTP status (api/errors.py); workers decide from the class whether
a failed step is worth retrying (TransientError) or must roll back (everything else).

    VpsctlError
    ├── InvalidRequest          bad input: 422
    ├── NotFound                unknown, or not yours: 404
    ├── Forbidden               known role, not allowed: 403
    │   └── QuotaExceeded       more than the customer's quota: 403, names the quota
    ├── Unauthorized            no or bad token: 401
    ├── Conflict                not allowed from the current state: 409
    │   └── InvalidState        an operation refused from the VPS's status
    ├── InsufficientCapacity    no host can hold it: 422
    ├── ContractRefusal         a contract rule says no: 422, names the rule
    ├── OperationFailed         a step failed for good; the job rolls back
    ├── HypervisorError         libvirt said no
    │   ├── TransientError      worth retrying (connection lost, host busy)
    │   └── StorageFull         a storage pool has no room left: not retried, rolled back
    ├── ImageError              building or finding an image failed
    └── SchemaError             the database cannot be migrated to this version's schema
"""

from __future__ import annotations


class VpsctlError(Exception):
    """Base of every error raised on purpose."""

    title = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(VpsctlError):
    title = "Invalid request"


class NotFound(VpsctlError):
    title = "Not found"


class Forbidden(VpsctlError):
    title = "Forbidden"


class QuotaExceeded(Forbidden):
    title = "Quota exceeded"

    def __init__(self, quota: str, limit: int, wanted: int, unit: str = "") -> None:
        super().__init__(f"quota {quota}: this would make {wanted}{unit} where your account may hold {limit}{unit}; "
                         "ask support to raise it")
        self.quota, self.limit, self.wanted = quota, limit, wanted


class Unauthorized(VpsctlError):
    title = "Unauthorized"


class Conflict(VpsctlError):
    title = "Conflict"


class InvalidState(Conflict):
    title = "Operation not allowed in the current status"

    def __init__(self, operation: str, status: str, allowed: frozenset[str] | set[str]) -> None:
        super().__init__(
            f"cannot {operation} a VPS whose status is '{status}' "
            f"(allowed from: {', '.join(sorted(allowed))})"
        )
        self.status = status


class InsufficientCapacity(VpsctlError):
    title = "Insufficient capacity"


class ContractRefusal(VpsctlError):
    title = "Refused by the contract"

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule


class OperationFailed(VpsctlError):
    title = "Operation failed"


class HypervisorError(VpsctlError):
    title = "Hypervisor error"


class TransientError(HypervisorError):
    title = "Temporary hypervisor error"


class StorageFull(HypervisorError):
    """A host's storage pool has no room left for what a step writes (the disk of a new VPS, a
    backup's copy, a grown disk).  Not retried: the job fails and rolls back, saying which pool;
    staff make room (or add some) and the client asks again."""

    title = "Storage full"


class ImageError(VpsctlError):
    title = "Image error"


class SchemaError(VpsctlError):
    """Raised at start-up, before serving: the database is not one this version can upgrade."""

    title = "Database schema error"
