"""The results table (markdown): one column per target, one row per metric, plus the ratios the
issue sets targets on. Values are kept by metric id so the table layout lives only here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

TARGETS = ("anode", "anode3", "ceiling", "seaweedfs", "dd")
STORES = ("anode", "anode3", "seaweedfs")


@dataclass(frozen=True)
class Scale:
    """Sizes that appear in row labels."""

    small: int = 4096
    medium: int = 1024 * 1024
    large_mib: int = 256
    part_mib: int = 16
    parallel: int = 4
    list_keys: int = 10_000
    list_page: int = 1000


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    unit: str  # "ops/s", "ms", "MiB/s", "s", "count"

    @property
    def higher_is_better(self) -> bool:
        return self.unit in ("ops/s", "MiB/s")


def rows(scale: Scale) -> list[Row]:
    """Every row of the table, in order (the smoke test checks each one is filled)."""
    out: list[Row] = []
    for tag, size in (("small", scale.small), ("medium", scale.medium)):
        for op in ("put", "get"):
            name = f"{op.upper()} {_size(size)}"
            out += [
                Row(f"{op}_{tag}_ops", f"{name} ops/s", "ops/s"),
                Row(f"{op}_{tag}_p50", f"{name} p50 ms", "ms"),
                Row(f"{op}_{tag}_p99", f"{name} p99 ms", "ms"),
            ]
    large = f"{scale.large_mib} MiB"
    parts = f"{scale.part_mib} MiB × {scale.parallel} parallel"
    out += [
        Row("put_large", f"PUT {large} single MiB/s", "MiB/s"),
        Row("get_large", f"GET {large} single MiB/s", "MiB/s"),
        Row("put_multipart", f"PUT {large} multipart ({parts}) MiB/s", "MiB/s"),
        Row("get_ranged", f"GET {large} ranged ({parts}) MiB/s", "MiB/s"),
        Row("list", f"List {scale.list_keys:,} keys (pages of {scale.list_page}) s", "s"),
        Row("errors", "Failed requests (all phases)", "count"),
    ]
    return out


# Which rows each target can fill (the ceiling stores nothing; dd has only bandwidth).
SMALL_ROWS = {f"{op}_small_{m}" for op in ("put", "get") for m in ("ops", "p50", "p99")}
DD_ROWS = {
    "put_large": "write",
    "put_multipart": "write",
    "get_large": "read",
    "get_ranged": "read",
}


def expected_cells(scale: Scale, targets: Iterable[str]) -> dict[str, set[str]]:
    """Row id -> targets that must have a value in it."""
    want: dict[str, set[str]] = {}
    for row in rows(scale):
        for t in targets:
            fills = (
                t in STORES
                or (t == "ceiling" and (row.id in SMALL_ROWS or row.id == "errors"))
                or (t == "dd" and row.id in DD_ROWS)
            )
            if fills:
                want.setdefault(row.id, set()).add(t)
    return want


@dataclass
class Results:
    scale: Scale
    targets: list[str]
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)

    def set(self, target: str, row_id: str, value: float) -> None:
        self.values.setdefault(row_id, {})[target] = value

    def get(self, target: str, row_id: str) -> float | None:
        return self.values.get(row_id, {}).get(target)

    def add_errors(self, target: str, n: int) -> None:
        self.set(target, "errors", (self.get(target, "errors") or 0) + n)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ops/s":
        return f"{value:,.0f}"
    if unit == "MiB/s":
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if unit == "ms":
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if unit == "s":
        return f"{value:.3f}"
    return f"{value:.0f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _per_cpu(results: Results, target: str, phase: str) -> float | None:
    """Ops per second of server CPU: compares servers even when the client is the bottleneck."""
    ops, cpu = results.get(target, f"{phase}_ops"), results.get(target, f"{phase}_cpu")
    return ops / (cpu / 100) if ops is not None and cpu else None


def _check(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def render(results: Results) -> str:
    """The whole markdown report: header, main table, ratios, notes, profile summary."""
    cols = [t for t in TARGETS if t in results.targets]
    both = "anode" in cols and "seaweedfs" in cols
    head = ["metric", *cols] + (["anode / seaweedfs"] if both else [])
    lines = [
        *results.header,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for row in rows(results.scale):
        cells = [row.label]
        for t in cols:
            value = results.get(t, row.id)
            if t == "dd" and row.id in DD_ROWS and value is not None:
                cells.append(f"{_fmt(value, row.unit)} ({DD_ROWS[row.id]})")
            else:
                cells.append(_fmt(value, row.unit))
        if both:
            r = _ratio(results.get("anode", row.id), results.get("seaweedfs", row.id))
            cells.append("—" if r is None or row.unit == "count" else f"{r:.2f}×")
        lines.append("| " + " | ".join(cells) + " |")

    lines += ["", "| ratio | value | target | met |", "|---|---:|---:|:---:|"]

    def pct(name: str, a: float | None, b: float | None, goal: float | None) -> None:
        r = _ratio(a, b)
        shown = "—" if r is None else f"{100 * r:.0f} %"
        target = "—" if goal is None else f"≥ {100 * goal:.0f} %"
        met = None if r is None or goal is None else r >= goal
        lines.append(f"| {name} | {shown} | {target} | {_check(met)} |")

    a = results.get
    pct(
        "anode GET 4 KiB ops/s / ceiling",
        a("anode", "get_small_ops"),
        a("ceiling", "get_small_ops"),
        0.5,
    )
    pct(
        "same, per server CPU-second (the ceiling is load-generator bound)",
        _per_cpu(results, "anode", "get_small"),
        _per_cpu(results, "ceiling", "get_small"),
        0.5,
    )
    pct(
        "anode PUT 4 KiB ops/s / ceiling",
        a("anode", "put_small_ops"),
        a("ceiling", "put_small_ops"),
        None,
    )
    for row_id, label in (
        ("put_large", "PUT single"),
        ("put_multipart", "PUT multipart"),
        ("get_large", "GET single"),
        ("get_ranged", "GET ranged"),
    ):
        pct(f"anode {label} / dd {DD_ROWS[row_id]}", a("anode", row_id), a("dd", row_id), 0.5)
    listing = a("anode", "list")
    lines.append(
        f"| anode list {results.scale.list_keys:,} keys | "
        f"{'—' if listing is None else f'{listing:.3f} s'} | < 0.5 s | "
        f"{_check(None if listing is None else listing < 0.5)} |"
    )
    for row_id, label in (
        ("get_small_ops", "GET 4 KiB ops/s"),
        ("put_small_ops", "PUT 4 KiB ops/s"),
        ("put_large", "PUT single MiB/s"),
        ("get_large", "GET single MiB/s"),
    ):
        pct(f"anode / seaweedfs {label}", a("anode", row_id), a("seaweedfs", row_id), None)
    for row_id, label, goal in (
        ("put_small_ops", "PUT 4 KiB ops/s", 0.5),
        ("get_small_ops", "GET 4 KiB ops/s", None),
        ("put_medium_ops", "PUT 1 MiB ops/s", None),
        ("get_medium_ops", "GET 1 MiB ops/s", None),
    ):
        pct(f"3-node cluster / single node {label}", a("anode3", row_id), a("anode", row_id), goal)

    if results.notes:
        lines += ["", "Notes:", *(f"- {n}" for n in results.notes)]
    if results.profile:
        lines += ["", *results.profile]
    return "\n".join(lines) + "\n"
