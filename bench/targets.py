"""Rows measured against a target: the figure, the target and the ratio.

The ratio is oriented so that ≥ 1.0 always means "meets the target": measured / target
where more is better (requests per second), target / measured where less is better (CPU
milliseconds per request, latency).
"""

from __future__ import annotations

from typing import Any, Literal

Better = Literal["higher", "lower"]


def target_row(
    scenario: str,
    metric: str,
    value: float,
    unit: str,
    *,
    target: float,
    better: Better,
    note: str = "",
) -> dict[str, Any]:
    lower_ok = target / value if value > 0 else float("inf")
    ratio = value / target if better == "higher" else lower_ok
    return {
        "scenario": scenario,
        "metric": metric,
        "value": value,
        "unit": unit,
        "note": note,
        "target": target,
        "better": better,
        "ratio": ratio,
    }


def describe_target(row: dict[str, Any]) -> tuple[str, str]:
    """The table's target and ratio cells; empty for a row without a target."""
    if "target" not in row:
        return "", ""
    sign = "≥" if row["better"] == "higher" else "≤"
    verdict = "met" if row["ratio"] >= 1.0 else "MISSED"
    return f"{sign} {_fmt(row['target'])}", f"{row['ratio']:.2f} {verdict}"


def _fmt(value: float) -> str:
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
