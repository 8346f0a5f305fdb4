"""Render one plan as human text, SQL or JSON; all three show the transactional groups."""

from __future__ import annotations

import json

from schema_pipeline.plan.artifact import plan_file_dict
from schema_pipeline.plan.model import Plan, StepGroup

_RED, _YELLOW, _GREEN, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[32m", "\033[1m", "\033[0m"


def _group_title(n: int, group: StepGroup) -> str:
    first, last = group.indices[0] + 1, group.indices[-1] + 1
    steps = f"step {first}" if first == last else f"steps {first}-{last}"
    where = "in one transaction" if group.transactional else "outside a transaction"
    return f"group {n} ({steps}): {where}"


def render_sql(plan: Plan) -> str:
    """The migration as a psql-runnable script: BEGIN/COMMIT around transactional groups,
    non-transactional steps on their own, hazards (with sizes) as comments."""
    if plan.is_empty:
        return "-- no changes\n"
    out: list[str] = [f"-- plan {plan.fingerprint()}: {len(plan.steps)} step(s) in {len(plan.groups())} group(s)"]
    for n, group in enumerate(plan.groups(), 1):
        block = [f"-- {_group_title(n, group)}"]
        if group.transactional:
            block.append("BEGIN;")
        for i in group.indices:
            step = plan.steps[i]
            block.append(f"-- step {i + 1}: {step.action} {step.object_kind} {step.object_name}")
            block += [f"-- hazard {h.type}: {h.text()}" for h in step.hazards]
            sql = step.sql.strip()
            block.append(sql + ("" if sql.endswith(";") else ";"))
        if group.transactional:
            block.append("COMMIT;")
        out.append("\n".join(block))
    return "\n\n".join(out) + "\n"


def render_json(plan: Plan, desired=None, scope: dict | None = None) -> str:
    """The plan file (see plan.artifact); `desired` is the desired Catalog to embed, if known."""
    return json.dumps(plan_file_dict(plan, desired, scope), indent=2) + "\n"


def render_human(plan: Plan, *, color: bool = False) -> str:
    """A readable summary: steps by group with their hazards, then the totals."""
    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    if plan.is_empty:
        return paint("No changes: the database matches the desired state.", _GREEN) + "\n"
    groups = plan.groups()
    lines = [paint(f"Plan: {len(plan.steps)} step(s) in {len(groups)} group(s)", _BOLD)]
    for n, group in enumerate(groups, 1):
        lines.append(paint(f"  {_group_title(n, group)}", _BOLD))
        for i in group.indices:
            step = plan.steps[i]
            sign = {"create": "+", "drop": "-"}.get(step.action, "~")
            code = {"+": _GREEN, "-": _RED}.get(sign, _YELLOW)
            tx = "" if step.transactional else "  [outside transaction]"
            lines.append(paint(f"  {sign} {i + 1:>3}. {step.action} {step.object_kind} {step.object_name}{tx}", code))
            for sql_line in step.sql.strip().splitlines():
                lines.append(f"         {sql_line}")
            for h in step.hazards:
                lines.append(paint(f"         ! {h.type}: {h.text()}", _RED))
    hazards = sorted(plan.hazard_types())
    lines.append("")
    lines.append("Hazards: " + (paint(", ".join(hazards), _RED) if hazards else "none"))
    lines.append(f"Plan fingerprint: {plan.fingerprint()}  (target {plan.target_fingerprint or '-'}, "
                 f"desired {plan.desired_fingerprint or '-'})")
    return "\n".join(lines) + "\n"


def render(plan: Plan, fmt: str, *, color: bool = False, desired=None, scope: dict | None = None) -> str:
    if fmt == "sql":
        return render_sql(plan)
    if fmt == "json":
        return render_json(plan, desired, scope)
    return render_human(plan, color=color)
