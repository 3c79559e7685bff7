"""A table's record (`data.table_set.table_info`: its target, task, encoder and features), checked
as tocha writes it wherever one is read: a checkpoint, an export, a prepared folder's manifest."""

from __future__ import annotations

import math
from typing import Any

from tocha.data.table import FILLS_KNOWN
from tocha.tasks import TASKS


def table_problem(table: Any, features: int) -> str | None:
    """What is wrong with a table's record of `features` features, or None (None too for no record)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        return "its table record is not a mapping"
    if "series" in table:  # a series' record (`data.series`): its columns, window and scale
        from tocha.data.series import series_problem

        return (
            series_problem(table) or TASKS[table.get("task", "")].table_problem(table)
            if table.get("task") in TASKS
            else "its series record names no known task"
        )
    if not (isinstance(table.get("target"), str) and table.get("task") in TASKS):
        return "its table record names no target column and known task"
    return encoding_problem(table, features, "table record") or TASKS[table["task"]].table_problem(table)


def beside_problem(beside: Any) -> str | None:
    """What is wrong with the record of the table columns a text run reads beside its text
    (`data.text_set`: their encoder, features and fill), or None."""
    if not isinstance(beside, dict) or not isinstance(beside.get("features"), list):
        return "its text record's columns beside the text are not a mapping naming its features"
    return encoding_problem(beside, len(beside["features"]), "text record's columns")


def encoding_problem(record: dict[str, Any], features: int, what: str) -> str | None:
    """What is wrong with how a record encodes rows (its fill, `features` names and encoder), or None."""
    encoder, names = record.get("encoder"), record.get("features")
    if record.get("fill") not in (None, *FILLS_KNOWN):
        return f"its {what}'s fill {record.get('fill')!r} is not one tocha has"
    if not (isinstance(names, list) and len(names) == features and all(isinstance(n, str) for n in names)):
        return f"its {what} does not name its {features} features"
    kinds = {"numeric": list, "categories": dict, "fill": dict}
    if not (isinstance(encoder, dict) and all(isinstance(encoder.get(k), t) for k, t in kinds.items())):
        return f"its {what}'s encoder is not one tocha writes"
    fills = encoder["fill"].values()
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in fills):
        return f"its {what} fills a gap with a number that is not finite"
    return None
