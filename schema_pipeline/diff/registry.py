"""One SQL generator per object kind."""

from __future__ import annotations

from schema_pipeline.diff.base import Generator
from schema_pipeline.diff.casts import CastGenerator
from schema_pipeline.diff.collations import CollationGenerator
from schema_pipeline.diff.columns import ColumnGenerator
from schema_pipeline.diff.constraints import ConstraintGenerator, ForeignKeyGenerator
from schema_pipeline.diff.event_triggers import EventTriggerGenerator
from schema_pipeline.diff.extensions import ExtensionGenerator
from schema_pipeline.diff.functions import FunctionGenerator
from schema_pipeline.diff.indexes import IndexGenerator
from schema_pipeline.diff.operators import OperatorGenerator
from schema_pipeline.diff.policies import PolicyGenerator
from schema_pipeline.diff.privileges import DefaultPrivilegeGenerator
from schema_pipeline.diff.publications import PublicationGenerator
from schema_pipeline.diff.rules import RuleGenerator, StatisticsGenerator
from schema_pipeline.diff.schemas import SchemaGenerator
from schema_pipeline.diff.sequences import SequenceGenerator, SequenceOwnerGenerator
from schema_pipeline.diff.tables import TableGenerator
from schema_pipeline.diff.text_search import TextSearchConfigurationGenerator, TextSearchDictionaryGenerator
from schema_pipeline.diff.triggers import TriggerGenerator
from schema_pipeline.diff.types import TypeGenerator
from schema_pipeline.diff.views import MaterializedViewGenerator, ViewGenerator

GENERATORS: dict[str, Generator] = {
    g.kind: g
    for g in (
        SchemaGenerator(),
        ExtensionGenerator(),
        CollationGenerator(),
        TypeGenerator(),
        SequenceGenerator(),
        SequenceOwnerGenerator(),
        TableGenerator(),
        ColumnGenerator(),
        ConstraintGenerator(),
        ForeignKeyGenerator(),
        IndexGenerator(),
        ViewGenerator(),
        MaterializedViewGenerator(),
        FunctionGenerator(),
        TriggerGenerator(),
        PolicyGenerator(),
        DefaultPrivilegeGenerator(),
        RuleGenerator(),
        StatisticsGenerator(),
        EventTriggerGenerator(),
        OperatorGenerator(),
        CastGenerator(),
        PublicationGenerator(),
        TextSearchDictionaryGenerator(),
        TextSearchConfigurationGenerator(),
    )
}
