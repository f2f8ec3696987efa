"""`nba report --format html`: one self-contained page a marketer would rather look at.

Charts are inline SVG drawn here (no script, no network: the file opens anywhere, is
mailed as it is, and prints): per experiment, each arm's response rate with its 95%
interval against the control's; per action, its rate on each channel and arm. Tables
carry the numbers beside them. Every value is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from nba.authoring.report import ActionRow, BudgetUse, ExperimentReport, Rate, Report

WIDTH = 640
ROW = 28
LABEL = 220
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1b1b1f; max-width: 60rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { padding: .25rem .6rem; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child { text-align: left; }
.warn { background: #fff3cd; border: 1px solid #e0b000; padding: .5rem .8rem; }
svg text { font: 12px system-ui, sans-serif; }
.spent { fill: none; stroke: #4f7cac; stroke-width: 2; }
.limit, .pace { stroke: #9aa5b1; stroke-dasharray: 4 3; }
.bar { fill: #4f7cac; } .control { fill: #9aa5b1; } .ci { stroke: #1b1b1f; stroke-width: 1.5; }
"""


def render(report: Report, title: str = "nba report") -> str:
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        f"<title>{escape(title)}</title><style>{STYLE}</style><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{report.decisions:,} logged decisions joined with their outcomes.</p>",
    ]
    for experiment in report.experiments:
        parts += _experiment(experiment)
    parts += _actions(report.rows)
    if report.budgets:
        parts += _budgets(report)
    if report.models:
        parts += _models(report)
    parts.append("</body></html>")
    return "\n".join(parts)


def _experiment(experiment: ExperimentReport) -> list[str]:
    parts = [f'<section class=experiment data-experiment="{escape(experiment.experiment)}">']
    parts.append(f"<h2>Experiment {escape(experiment.experiment)}</h2>")
    if experiment.srm:
        parts.append(
            f'<p class="warn srm">Sample-ratio mismatch: the arms\' customers do not match their '
            f"declared shares (p = {experiment.srm_p:.2g}). Check the assignment and the logging "
            "before trusting the uplift.</p>"
        )
    bars = [(a.arm, a.rate, a.arm == experiment.control) for a in experiment.arms]
    parts.append(_chart("Response rate by arm (95% interval)", bars))
    parts.append(
        "<table><tr><th>arm</th><th>share</th><th>customers</th><th>decisions</th>"
        "<th>response rate</th><th>uplift (95%)</th></tr>"
    )
    for arm in experiment.arms:
        if arm.uplift is None:
            lift = "control"
        elif arm.uplift.relative is None:
            lift = f"{arm.uplift.difference:+.2%} points"
        else:
            u = arm.uplift
            lift = f"{u.relative:+.1%} [{u.relative_low:+.1%}, {u.relative_high:+.1%}]"
        parts.append(
            f"<tr><td>{escape(arm.arm)}</td><td>{arm.share:.0%}</td><td>{arm.customers:,}</td>"
            f"<td>{arm.decisions:,}</td><td>{_rate(arm.rate)}</td><td>{escape(lift)}</td></tr>"
        )
    parts.append("</table></section>")
    return parts


def _actions(rows: Sequence[ActionRow]) -> list[str]:
    parts = ["<section class=actions><h2>Actions</h2>"]
    bars = [(f"{r.action_id} · {r.channel} · {r.arm}", r.rate, False) for r in rows]
    parts.append(_chart("Response rate by action, channel and arm (95% interval)", bars))
    parts.append(
        "<table><tr><th>action</th><th>channel</th><th>arm</th><th>decisions</th>"
        "<th>impressions</th><th>positives</th><th>rate</th><th>value / impression</th></tr>"
    )
    for r in rows:
        parts.append(
            f"<tr><td>{escape(r.action_id)}</td><td>{escape(r.channel)}</td>"
            f"<td>{escape(r.arm)}</td><td>{r.decisions:,}</td><td>{r.impressions:,}</td>"
            f"<td>{r.positives:,}</td><td>{_rate(r.rate)}</td>"
            f"<td>{r.value_per_impression:.2f}</td></tr>"
        )
    parts.append("</table></section>")
    return parts


def _models(report: Report) -> list[str]:
    parts = ["<section class=models><h2>Model maturity</h2><table>"]
    parts.append("<tr><th>action</th><th>positives</th><th>posterior mean</th><th></th></tr>")
    for m in report.models:
        state = "mature" if m.mature else "immature"
        parts.append(
            f"<tr><td>{escape(m.action_id)}</td><td>{m.positives:.1f}</td>"
            f"<td>{m.posterior_mean:.4f}</td><td>{state}</td></tr>"
        )
    parts.append("</table></section>")
    return parts


def _budgets(report: Report) -> list[str]:
    parts = ["<section class=budgets><h2>Budgets</h2>"]
    parts.append(
        "<table><tr><th>budget</th><th>window</th><th>used</th><th>limit</th>"
        "<th>allowed by now</th></tr>"
    )
    for b in report.budgets:
        parts.append(
            f"<tr><td>{escape(b.budget)}</td><td>{escape(b.window)}</td><td>{b.used:,}</td>"
            f"<td>{b.limit:,}</td><td>{b.allowed_now:,}</td></tr>"
        )
    parts.append("</table>")
    parts += [_budget_chart(b) for b in report.budgets]
    parts.append("</section>")
    return parts


def _budget_chart(b: BudgetUse) -> str:
    """The logged recommendations a budget covers, summed over its window, against its
    limit (and, paced, the even spend): is it spent too early, or not at all?"""
    width, height, left, bottom = WIDTH, 180, 50, 150
    top = max(b.limit, b.spent[-1][1] if b.spent else 0) or 1

    def point(fraction: float, count: float) -> str:
        return f"{left + fraction * (width - left - 20):.1f},{bottom - count / top * 130:.1f}"

    title = f"Budget {b.budget}: spent over {b.window}"
    out = [
        f'<svg class="chart budget" role=img width={width} height={height + 10}'
        f' data-budget="{escape(b.budget)}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f"<polyline class=limit points='{point(0, b.limit)} {point(1, b.limit)}' />",
        f"<text x={left - 6} y={bottom - b.limit / top * 130 + 4:.1f} text-anchor=end>"
        f"{b.limit:,}</text>",
    ]
    if b.paced:
        out.append(f"<polyline class=pace points='{point(0, 0)} {point(1, b.limit)}' />")
    if b.spent:
        points = " ".join(point(f, n) for f, n in [(0.0, 0), *b.spent])
        out.append(f"<polyline class=spent points='{points}' data-points={len(b.spent)} />")
    out += [
        f"<text x={left} y={bottom + 16}>start</text>",
        f"<text x={width - 20} y={bottom + 16} text-anchor=end>end of {escape(b.window)}</text>",
        "</svg>",
    ]
    return "".join(out)


def _rate(rate: Rate) -> str:
    return f"{rate.value:.2%} [{rate.low:.2%}, {rate.high:.2%}]"


def _chart(title: str, bars: Sequence[tuple[str, Rate, bool]]) -> str:
    """Horizontal bars of each rate, with its interval as a whisker, on one scale."""
    top = max((r.high for _, r, _ in bars), default=0.0) or 1.0
    scale = (WIDTH - LABEL - 20) / top
    height = ROW * len(bars) + 30
    out = [
        f'<svg class=chart role=img width={WIDTH} height={height} aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, rate, control) in enumerate(bars):
        y = 10 + i * ROW
        klass = "bar control" if control else "bar"
        low, high = LABEL + rate.low * scale, LABEL + rate.high * scale
        out += [
            f"<text x={LABEL - 8} y={y + 15} text-anchor=end>{escape(label)}</text>",
            f'<rect class="{klass}" x={LABEL} y={y + 4} width={rate.value * scale:.1f} height=16'
            f' data-rate="{rate.value:.6f}"><title>{escape(label)}: {_rate(rate)}</title></rect>',
            f"<line class=ci x1={low:.1f} x2={high:.1f} y1={y + 12} y2={y + 12} />",
        ]
    axis_y = 10 + len(bars) * ROW + 12
    out.append(f"<text x={LABEL} y={axis_y}>0%</text>")
    out.append(f"<text x={WIDTH - 20} y={axis_y} text-anchor=end>{top:.1%}</text>")
    out.append("</svg>")
    return "".join(out)
