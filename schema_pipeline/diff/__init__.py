"""Catalog A vs catalog B -> ordered steps with hazards."""

from schema_pipeline.diff.engine import diff_catalogs

__all__ = ["diff_catalogs"]
