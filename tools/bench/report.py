"""Turning scenario results into tables: the headline figures, ratios, and bench/REPORT.md.

Pure functions over the result dictionaries the scenarios return, so the
rendering is tested without running anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# (scenario, label, path into the result, unit, which direction is better)
HEADLINES: list[tuple[str, str, tuple[str, ...], str, str]] = [
    ("http", "GET /versions", ("requests_per_s",), "req/s", "higher"),
    ("http", "GET /versions p99", ("latency_ms", "p99"), "ms", "lower"),
    ("register", "registrations", ("users_per_second",), "users/s", "higher"),
    ("delivery", "delivery p50", ("latency", "p50_ms"), "ms", "lower"),
    ("delivery", "delivery p99", ("latency", "p99_ms"), "ms", "lower"),
    ("throughput", "sends (one room)", ("messages_per_second",), "msg/s", "higher"),
    ("throughput", "send p99", ("send_latency", "p99_ms"), "ms", "lower"),
    ("fanout", "all members have it", ("all_delivered_ms",), "ms", "lower"),
    ("fanout", "member p50", ("delivery_ms", "p50"), "ms", "lower"),
    ("history", "fill (8 parallel sends)", ("fill_messages_per_second",), "msg/s", "higher"),
    ("history", "/messages page p50", ("page_ms", "p50"), "ms", "lower"),
    ("history", "/messages page p99", ("page_ms", "p99"), "ms", "lower"),
    ("initial_sync", "first /sync (median)", ("median_ms",), "ms", "lower"),
    (
        "connections",
        "idle server RSS, after the other scenarios",
        ("rss_kib", "before"),
        "KiB",
        "lower",
    ),
    ("connections", "RSS per idle long-poll", ("kib_per_connection",), "KiB", "lower"),
    ("connections", "RSS while held", ("rss_kib", "held"), "KiB", "lower"),
]


def dig(result: Mapping[str, Any] | None, path: Sequence[str]) -> float | None:
    """The number at ``path`` in a nested result, or None when absent or not a number."""
    value: Any = result
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return float(value)


def headline_rows(scenarios: Mapping[str, Any]) -> list[tuple[str, str, float | None, str]]:
    """(scenario, label, value, unit) for every headline whose scenario ran."""
    rows = []
    for scenario, label, path, unit, _ in HEADLINES:
        if scenario in scenarios:
            rows.append((scenario, label, dig(scenarios[scenario], path), unit))
    return rows


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def format_table(scenarios: Mapping[str, Any]) -> str:
    """A terminal table of one server's headline figures; failures show their error."""
    lines = [f"{'scenario':<13} {'figure':<26} {'value':>12}  unit"]
    for scenario, label, value, unit in headline_rows(scenarios):
        lines.append(f"{scenario:<13} {label:<26} {fmt(value):>12}  {unit}")
    for name, result in scenarios.items():
        if isinstance(result, Mapping) and "error" in result:
            lines.append(f"{name:<13} {'FAILED':<26} {result['error'][:60]}")
    return "\n".join(lines)


def ratio(plait: float | None, synapse: float | None) -> float | None:
    if plait is None or synapse is None or synapse == 0:
        return None
    return plait / synapse


def comparison_rows(plait: Mapping[str, Any], synapse: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per headline: both values, Plait/Synapse, and whether Plait is ahead."""
    rows = []
    for scenario, label, path, unit, better in HEADLINES:
        if scenario not in plait and scenario not in synapse:
            continue
        p = dig(plait.get(scenario), path)
        s = dig(synapse.get(scenario), path)
        r = ratio(p, s)
        ahead = None if r is None else (r > 1 if better == "higher" else r < 1)
        rows.append(
            {
                "scenario": scenario,
                "figure": label,
                "unit": unit,
                "better": better,
                "plait": p,
                "synapse": s,
                "ratio": None if r is None else round(r, 3),
                "plait_ahead": ahead,
            }
        )
    return rows


def format_comparison(rows: Sequence[Mapping[str, Any]], *, markdown: bool = False) -> str:
    header = ["scenario", "figure", "unit", "Plait", "Synapse", "Plait/Synapse", "better"]
    body = [
        [
            row["scenario"],
            row["figure"],
            row["unit"],
            fmt(row["plait"]),
            fmt(row["synapse"]),
            "-" if row["ratio"] is None else f"{row['ratio']:.2f}x",
            row["better"],
        ]
        for row in rows
    ]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(out)
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *body]
    )


def render_report(report: Mapping[str, Any]) -> str:
    """bench/REPORT.md from the dictionary compare.py also writes as bench/report.json."""
    machine = report.get("machine", {})
    versions = report.get("versions", {})
    lines = [
        "# Plait vs Synapse: benchmark report",
        "",
        f"Generated by `make bench-compare` (tools/bench/compare.py) on {report.get('date', '?')}.",
        "Same client, same scenarios, same machine, one server at a time; both on loopback.",
        "Numbers from a shared, busy machine: compare the ratios, not the absolute values.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores",
        f"- Memory: {machine.get('memory_gib', '?')} GiB",
        f"- Load average at start: {machine.get('load_at_start', '?')}",
        f"- Load average at end: {machine.get('load_at_end', '?')}",
        "",
        "## Versions",
        "",
        f"- Plait {versions.get('plait', '?')}, Synapse {versions.get('synapse', '?')}, "
        f"Python {versions.get('python', '?')} (Plait), "
        f"{versions.get('synapse_python', '?')} (Synapse)",
        "",
        "## Settings",
        "",
        "```",
        *(f"{k}: {v}" for k, v in report.get("settings", {}).items()),
        "```",
        "",
    ]
    for database, block in report.get("databases", {}).items():
        lines += [f"## {database}", ""]
        if block.get("error"):
            lines += [f"Not run: {block['error']}", ""]
            continue
        lines += [format_comparison(block.get("rows", []), markdown=True), ""]
        for server in ("plait", "synapse"):
            failed = {
                name: result["error"]
                for name, result in block.get(server, {}).items()
                if isinstance(result, Mapping) and "error" in result
            }
            for name, error in failed.items():
                lines.append(f"- {server} {name} failed: {error}")
        lines.append("")
    if report.get("notes"):
        lines += ["## Notes", "", *(f"- {note}" for note in report["notes"]), ""]
    return "\n".join(lines)
