"""Review: static rules over the state files and over each generated migration, plus reporters."""

from schema_pipeline.review.catalog import RULES, Rule
from schema_pipeline.review.config import ReviewConfig
from schema_pipeline.review.finding import Finding, Severity, has_blocking, sort_findings
from schema_pipeline.review.plan_rules import review_plan
from schema_pipeline.review.report import FORMATS, counts, render
from schema_pipeline.review.state_rules import review_state

__all__ = [
    "FORMATS",
    "RULES",
    "Finding",
    "ReviewConfig",
    "Rule",
    "Severity",
    "counts",
    "has_blocking",
    "render",
    "review_plan",
    "review_state",
    "sort_findings",
]
