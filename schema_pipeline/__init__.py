"""schema_pipeline: state-based PostgreSQL schema management, orchestrated by Dagster."""

__version__ = "0.1.0"
