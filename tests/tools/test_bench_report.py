"""Rendering benchmark results: terminal tables, ratios and REPORT.md from fixed dicts."""

from __future__ import annotations

import math

from tools.bench.report import (
    comparison_rows,
    dig,
    format_comparison,
    format_table,
    render_report,
)

PLAIT = {
    "http": {"requests_per_s": 3000.0, "latency_ms": {"p99": 20.0}},
    "register": {"users_per_second": 4.0},
    "history": {"page_ms": {"p50": 10.0, "p99": 40.0}, "fill_messages_per_second": 100.0},
    "initial_sync": {"median_ms": 100.0},
    "fanout": {"error": "MatrixError: boom"},
}
SYNAPSE = {
    "http": {"requests_per_s": 1000.0, "latency_ms": {"p99": 40.0}},
    "register": {"users_per_second": 2.0},
    "history": {"page_ms": {"p50": 20.0, "p99": 80.0}, "fill_messages_per_second": 50.0},
    "initial_sync": {"median_ms": 200.0},
    "fanout": {"all_delivered_ms": 100.0, "delivery_ms": {"p50": 50.0}},
}


def test_dig_finds_numbers_and_nothing_else() -> None:
    assert dig(PLAIT, ["history", "page_ms", "p50"]) == 10.0
    assert dig(PLAIT, ["history", "missing"]) is None
    assert dig(PLAIT, ["fanout", "error"]) is None
    assert dig({"x": math.nan}, ["x"]) is None
    assert dig({"x": True}, ["x"]) is None
    assert dig(None, ["x"]) is None


def test_table_lists_headlines_and_failures() -> None:
    table = format_table(PLAIT)
    assert "3,000" in table and "req/s" in table
    assert "FAILED" in table and "boom" in table
    assert "connections" not in table  # a scenario that did not run has no rows


def test_ratios_and_direction() -> None:
    rows = {(r["scenario"], r["figure"]): r for r in comparison_rows(PLAIT, SYNAPSE)}
    http = rows[("http", "GET /versions")]
    assert http["ratio"] == 3.0 and http["plait_ahead"] is True
    latency = rows[("http", "GET /versions p99")]
    assert latency["ratio"] == 0.5 and latency["plait_ahead"] is True
    fanout = rows[("fanout", "all members have it")]
    assert fanout["plait"] is None and fanout["ratio"] is None and fanout["plait_ahead"] is None
    assert ("connections", "RSS per idle long-poll") not in rows


def test_comparison_text_and_markdown() -> None:
    rows = comparison_rows(PLAIT, SYNAPSE)
    text = format_comparison(rows)
    assert "Plait/Synapse" in text and "3.00x" in text and "0.50x" in text
    markdown = format_comparison(rows, markdown=True)
    lines = markdown.splitlines()
    assert lines[0].startswith("| scenario") and lines[1].startswith("|---")
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_report_markdown_has_machine_versions_settings_and_tables() -> None:
    report = {
        "date": "2026-11-22 04:00 UTC",
        "machine": {
            "cpu_model": "Test CPU",
            "cores": 2,
            "memory_gib": "23.0",
            "load_at_start": "1.00 2.00 3.00",
        },
        "versions": {"plait": "0.1", "synapse": "1.2.3", "python": "3.11.7"},
        "settings": {"sizes": "quick"},
        "databases": {
            "sqlite": {"plait": PLAIT, "synapse": SYNAPSE, "rows": comparison_rows(PLAIT, SYNAPSE)},
            "postgres": {"error": "PostgreSQL setup failed"},
        },
        "notes": ["a note"],
    }
    text = render_report(report)
    for needle in (
        "Test CPU",
        "2 cores",
        "1.00 2.00 3.00",
        "Synapse 1.2.3",
        "sizes: quick",
        "## sqlite",
        "| http | GET /versions",
        "3.00x",
        "plait fanout failed",
        "## postgres",
        "Not run: PostgreSQL setup failed",
        "- a note",
    ):
        assert needle in text


def test_failures_are_named_by_their_first_leaf() -> None:
    from tools.bench.all import describe

    group = ExceptionGroup("nursery", [KeyError("rooms"), KeyError("rooms")])
    assert describe(group) == "KeyError: 'rooms' (and 1 more)"
    assert describe(RuntimeError("boom")) == "RuntimeError: boom"
