"""Statements built once at import (expanding IN lists, driver-ready reads) take their
parameters' types from the columns as they are at that moment. A foreign key column whose
type came from the table it refers to would be untyped until that table is imported, and
on SQLite an untyped UUID parameter cannot be bound: every alert would fail with a 500,
depending only on which module a program happened to import first."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Each starts a fresh interpreter that imports one module first, as a program might.
FIRST_IMPORTS = [
    "tocsin.incidents.dedup",
    "tocsin.alerts.ingest",
    "tocsin.escalation.batch",
    "tocsin.notifications.delivery",
    "tocsin.noise.grouping",
    "tocsin.timers.schedule",
    "tocsin.incidents.lifecycle",
]

CHECK = """
import importlib, sys
importlib.import_module(sys.argv[1])
from sqlalchemy.sql.sqltypes import NullType
from tocsin.db import Base
untyped = sorted(
    f"{table.name}.{column.name}"
    for table in Base.metadata.tables.values()
    for column in table.columns
    if isinstance(column.type, NullType)
)
print(" ".join(untyped))
"""


@pytest.mark.parametrize("first", FIRST_IMPORTS)
def test_every_column_is_typed_whatever_is_imported_first(first: str) -> None:
    found = subprocess.run(
        [sys.executable, "-c", CHECK, first], capture_output=True, text=True, check=True
    )
    assert found.stdout.split() == []
