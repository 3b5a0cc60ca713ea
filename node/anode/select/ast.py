"""The syntax tree of an S3 Select query, as produced by `sql_parser` and consumed by `evaluate`.

Nodes are frozen dataclasses so that the planner (column pruning, Parquet pushdown) can walk and
compare them freely without fear of mutation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class _Missing:
    """PartiQL's MISSING: an absent attribute, distinct from NULL (omitted from JSON output)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class Node:
    """Base class of every expression node."""


@dataclass(frozen=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True)
class PathStep:
    """One step of a path: a field name (``quoted`` = case-sensitive), an index, or ``[*]``."""

    name: str | None = None
    index: int | None = None
    quoted: bool = False
    wildcard: bool = False


@dataclass(frozen=True)
class Path(Node):
    """A column reference such as ``s._1``, ``name``, ``s.a.b[0]`` (alias already stripped)."""

    steps: tuple[PathStep, ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-", "+", "NOT"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # arithmetic, comparison, "||", "AND", "OR"
    left: Node
    right: Node


@dataclass(frozen=True)
class Between(Node):
    operand: Node
    low: Node
    high: Node
    negated: bool = False


@dataclass(frozen=True)
class InList(Node):
    operand: Node
    items: tuple[Node, ...]
    negated: bool = False


@dataclass(frozen=True)
class Like(Node):
    operand: Node
    pattern: Node
    escape: Node | None = None
    negated: bool = False


@dataclass(frozen=True)
class IsCheck(Node):
    operand: Node
    kind: str  # "NULL" | "MISSING"
    negated: bool = False


@dataclass(frozen=True)
class Call(Node):
    """A scalar function call; date parts and TRIM modes arrive as upper-case string literals."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Cast(Node):
    operand: Node
    type_name: str


@dataclass(frozen=True)
class Case(Node):
    operand: Node | None
    whens: tuple[tuple[Node, Node], ...]
    default: Node | None


@dataclass(frozen=True)
class Aggregate(Node):
    name: str  # COUNT, SUM, AVG, MIN, MAX
    arg: Node | None  # None means COUNT(*)


@dataclass(frozen=True)
class SelectItem:
    expr: Node
    alias: str | None = None


@dataclass(frozen=True)
class Query:
    """``SELECT items FROM S3Object<from_path> [alias] [WHERE where] [LIMIT limit]``.

    ``items`` is empty for ``SELECT *``.
    """

    items: tuple[SelectItem, ...]
    from_path: tuple[PathStep, ...] = ()
    alias: str = "s3object"
    where: Node | None = None
    limit: int | None = None
    aggregate: bool = field(default=False)


def walk(node: Node):
    """Yield ``node`` and all its descendants (pre-order)."""
    yield node
    for value in vars(node).values():
        if isinstance(value, Node):
            yield from walk(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    yield from walk(item)
                elif isinstance(item, tuple):
                    for sub in item:
                        if isinstance(sub, Node):
                            yield from walk(sub)
