"""SQL the dialects spell differently, behind one expression each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["epoch_seconds", "quarter_hour"]


class _QuarterHour(FunctionElement[int]):
    """The quarter hour since 1970 (UTC) a timestamp falls in."""

    type = BigInteger()
    name = "quarter_hour"
    inherit_cache = True


def quarter_hour(column: ColumnElement[Any] | QueryableAttribute[Any]) -> _QuarterHour:
    """Quarter hours since 1970, UTC: the buckets every time zone's local hours are made
    of (offsets are whole quarters), so reports group by it and place buckets locally."""
    return _QuarterHour(column)


class _EpochSeconds(FunctionElement[float]):
    """Seconds since 1970 (UTC) of a timestamp, as a float."""

    type = Float()
    name = "epoch_seconds"
    inherit_cache = True


def epoch_seconds(column: ColumnElement[Any] | QueryableAttribute[Any]) -> _EpochSeconds:
    """A timestamp as seconds since 1970 (UTC): for reading many times cheaply, where
    only a few of them will ever become datetimes."""
    return _EpochSeconds(column)


@compiles(_QuarterHour)
def _quarter_hour_postgresql(element: _QuarterHour, compiler: SQLCompiler, **kw: Any) -> str:
    at = compiler.process(element.clauses, **kw)
    return f"CAST(floor(extract(epoch FROM {at}) / 900) AS BIGINT)"


@compiles(_QuarterHour, "sqlite")
def _quarter_hour_sqlite(element: _QuarterHour, compiler: SQLCompiler, **kw: Any) -> str:
    # Our timestamps are stored as UTC text; strftime('%s') reads them as UTC.
    return f"(CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER) / 900)"


@compiles(_EpochSeconds)
def _epoch_seconds_postgresql(element: _EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    at = compiler.process(element.clauses, **kw)
    return f"CAST(extract(epoch FROM {at}) AS DOUBLE PRECISION)"


@compiles(_EpochSeconds, "sqlite")
def _epoch_seconds_sqlite(element: _EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # The Julian day of 1970-01-01 00:00 UTC is 2440587.5.
    at = compiler.process(element.clauses, **kw)
    return f"((julianday({at}) - 2440587.5) * 86400.0)"
