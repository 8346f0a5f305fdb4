"""Reading the desired state: files, statements with file:line, allow-list, object inventory."""

from schema_pipeline.state.inventory import count_by_kind, declared_object, object_inventory
from schema_pipeline.state.loader import load_state
from schema_pipeline.state.model import DeclaredObject, DesiredState, Statement

__all__ = [
    "DeclaredObject",
    "DesiredState",
    "Statement",
    "count_by_kind",
    "declared_object",
    "load_state",
    "object_inventory",
]
