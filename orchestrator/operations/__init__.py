"""One module per operation; importing this package registers them all."""

from orchestrator.operations import create, delete
from orchestrator.operations.base import OPERATIONS, Context, Operation

__all__ = ["OPERATIONS", "Context", "Operation", "create", "delete"]
