"""Run every scenario against every implementation in interleaved rounds.

    python benchmarks/run.py [--rounds N] [--impl NAME ...] [--scenario NAME ...]
                             [--budget SECONDS] [--markdown]

Each round runs every selected scenario x implementation once, each in its own worker
process, the implementations in an order rotated from round to round. Prints a table:
per figure, the median over the rounds with its spread [min-max], then agent_triggers'
ratio to each peer (taken per round; their median and spread); ``--markdown`` prints it
as GitHub markdown tables. Writes benchmarks/results/results.json (every round's
figures, and each figure's median, min and max) and benchmarks/results/errors.png.
Each worker has a timeout, and the whole run a time budget: a worker that runs out of
either is reported as timed out (with the figures it had measured, if it got that far),
and one that would start with too little budget left is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, cast

from implementations import IMPLEMENTATIONS
from scenarios import (
    QUANTILE_LEVELS,
    SCENARIOS,
    ScaleScenario,
    Scenario,
    TimingScenario,
)

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
RESULTS = HERE / "results"
REFERENCE = "agent_triggers"
DASH = "\u2013"  # the en dash of a spread, "0.48 [0.41\u20130.67]", as in BENCHMARKS.md

# Seconds a worker may take, by scenario kind (startup and stopping included).
TIMEOUTS = {"timing": 30.0, "scale": 90.0, "throughput": 40.0}
ROUNDS = 3
# What a worker takes besides its scenario's own waiting, for the time budget: starting
# Python and importing (~1 s), then building, arming and stopping the triggers — about
# 60 µs per trigger on average over the six implementations at 200,000 triggers on a
# 2-core machine (the slowest, APScheduler 3 and the careful trio loop, ~120 µs).
WORKER_STARTUP = 1.0
PER_TRIGGER = 60e-6
# The default budget allows for a loaded machine: this many times the expected time,
# plus, per round, one worker running out the longest timeout (APScheduler 3 runs out
# its 40 s at throughput every time).
BUDGET_MARGIN = 1.5
# A worker is not started with less budget left than this, nor than it is expected to take.
MIN_START = 8.0


# --- running the workers ----------------------------------------------------------------


def measuring_seconds(scenario: Scenario) -> float:
    """How long ``scenarios.measure`` waits under ``scenario`` (settling and windows)."""
    if isinstance(scenario, TimingScenario):
        return 0.1 + scenario.duration + scenario.interval / 2
    if isinstance(scenario, ScaleScenario):
        return 0.2 + scenario.settle + scenario.idle_window
    return 0.1 + scenario.warmup + scenario.window


def expected_seconds(scenario: Scenario) -> float:
    """An estimate of one worker's time under ``scenario``, averaged over implementations."""
    return WORKER_STARTUP + measuring_seconds(scenario) + PER_TRIGGER * scenario.triggers


def expected_total(scenarios: Sequence[Scenario], impls: int, rounds: int) -> float:
    """An estimate of a whole run's time (without timeouts)."""
    return rounds * impls * sum(expected_seconds(s) for s in scenarios)


def default_budget(scenarios: Sequence[Scenario], impls: int, rounds: int) -> float:
    """Seconds for all the workers of a run: the expected time with a margin, and one
    worker per round running out its timeout."""
    slack = max(TIMEOUTS[s.kind] for s in scenarios)
    return BUDGET_MARGIN * expected_total(scenarios, impls, rounds) + rounds * slack


def rotated(impls: Sequence[str], round_index: int) -> list[str]:
    """The implementations in round ``round_index``'s order: shifted by one each round.

    Each then runs first, and last, as often as any other: what a worker follows (a
    warm CPU and page cache, or a neighbour's leftover load) is not always the same.
    """
    shift = round_index % len(impls)
    return [*impls[shift:], *impls[:shift]]


def run_worker(impl: str, scenario: Scenario, timeout: float) -> dict[str, Any]:
    """One worker process; its last JSON line, or why there is none."""
    command = [sys.executable, str(WORKER), impl, scenario.name]
    started = time.perf_counter()
    timed_out = failed = False
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        stdout, stderr, failed = done.stdout, done.stderr, done.returncode != 0
    except subprocess.TimeoutExpired as expired:  # run() has killed the worker
        stdout, stderr, timed_out = _text(expired.stdout), _text(expired.stderr), True
    elapsed = time.perf_counter() - started

    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    result.update(impl=impl, scenario=scenario.name, elapsed_s=elapsed)
    result.setdefault("triggers", scenario.triggers)
    if timed_out:
        result["status"] = "stop_timeout" if result.get("status") == "measured" else "timeout"
        result["timeout_s"] = timeout
    elif failed:
        result["status"] = "error"
        result["error"] = "\n".join(stderr.strip().splitlines()[-5:])
    return result


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def run_one(impl: str, scenario: Scenario, deadline: float, label: str) -> dict[str, Any]:
    """One worker within the run's budget, or a "skipped" result if too little is left."""
    left = deadline - time.monotonic()
    if left < max(MIN_START, expected_seconds(scenario)):
        print(f"{label} skipped: out of time budget", file=sys.stderr)
        return {
            "impl": impl,
            "scenario": scenario.name,
            "status": "skipped",
            "triggers": scenario.triggers,
        }
    print(f"{label} ...", end="", file=sys.stderr, flush=True)
    result = run_worker(impl, scenario, min(TIMEOUTS[scenario.kind], left))
    print(f" {result['status']} ({result['elapsed_s']:.1f} s)", file=sys.stderr)
    return result


def run_all(
    impls: Sequence[str], scenarios: Sequence[Scenario], rounds: int, budget: float
) -> list[dict[str, Any]]:
    """Every scenario x implementation once per round, the rounds one after the other.

    Interleaving (rather than all rounds of one pair in a row) spreads a slow spell of
    the machine over every implementation instead of landing on one.
    """
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + budget
    total = rounds * len(scenarios) * len(impls)
    for round_index in range(rounds):
        for scenario in scenarios:
            for impl in rotated(impls, round_index):
                label = (
                    f"[{len(results) + 1:{len(str(total))}}/{total}] "
                    f"round {round_index + 1}: {scenario.name} x {impl}"
                )
                result = run_one(impl, scenario, deadline, label)
                result["round"] = round_index + 1
                results.append(result)
    return results


def runs_by_impl(
    results: Sequence[dict[str, Any]], scenario: Scenario, impls: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """``scenario``'s runs, per implementation (in ``impls``' order), in round order."""
    runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    for result in results:
        if result["scenario"] == scenario.name and result["impl"] in runs:
            runs[result["impl"]].append(result)
    for impl_runs in runs.values():
        impl_runs.sort(key=lambda run: int(run["round"]))
    return {impl: impl_runs for impl, impl_runs in runs.items() if impl_runs}


def has_figures(run: dict[str, Any]) -> bool:
    return run.get("figures") is not None


# --- the table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One column: where its value is in a worker's figures, and which way is better."""

    path: tuple[str, ...]
    label: str
    format: str
    better: str | None  # "lower", "higher", or None: shown, not compared
    scale: float = 1.0  # shown as value * scale
    noise: float = 0.0  # two values both at most this (scaled) are not compared

    def value(self, result: dict[str, Any]) -> float | None:
        node: Any = result.get("figures")
        for key in self.path:
            if not isinstance(node, dict):
                return None
            node = cast("dict[str, Any]", node).get(key)
        return float(node) * self.scale if isinstance(node, (int, float)) else None

    @property
    def heading(self) -> str:
        return self.label + {"lower": " ↓", "higher": " ↑", None: ""}[self.better]


def _error_metrics(key: str, name: str) -> list[Metric]:
    quantiles = ("p50", "p99", "max")
    return [Metric((key, f"{q}_ms"), f"{name} {q}", "{:.2f}", "lower") for q in quantiles]


STOP = Metric(("stop_s",), "stop ms", "{:.1f}", "lower", scale=1000, noise=1.0)
METRICS: dict[str, list[Metric]] = {
    "timing": [
        Metric(("delivered_ratio",), "delivered", "{:.3f}", "higher"),
        *_error_metrics("error", "err"),
        *_error_metrics("first_call_error", "jit"),
        Metric(("cpu_per_s",), "CPU s/s", "{:.3f}", "lower"),
        STOP,
    ],
    "scale": [
        Metric(("arm_s",), "arm s", "{:.3f}", "lower"),
        Metric(("build_s",), "build s", "{:.3f}", None),
        Metric(("start_s",), "start s", "{:.3f}", None),
        STOP,
        Metric(("bytes_per_trigger",), "B/trigger", "{:,.0f}", "lower"),
        Metric(("idle_cpu_percent",), "idle CPU %", "{:.3f}", "lower", noise=0.1),
    ],
    "throughput": [
        Metric(("calls_per_s",), "calls/s", "{:,.0f}", "higher"),
        Metric(("delivered_ratio",), "of ideal", "{:.4f}", "higher"),
        Metric(("cpu_per_s",), "CPU s/s", "{:.2f}", None),
        Metric(("calls_per_cpu_s",), "calls/CPU s", "{:,.0f}", "higher"),
        STOP,
    ],
}
# The plot draws, per implementation, the round with the median of this.
ERR_P99 = Metric(("error", "p99_ms"), "err p99", "{:.2f}", "lower")

TABLE_LEGEND = """\
Rounds are interleaved: each runs every scenario x implementation once, in an order of
implementations rotated from round to round. Each figure is the median over the rounds,
then in brackets its spread: the least and the greatest value (just the value when one
round gave it). "(2 of 3 rounds)": only that many rounds gave figures (see the notes).
err, jit: in ms.
err    = lateness of each call against its ideal time t0 + k*interval (t0 = the start()
         call, k = the grid point at or before the call); every value is in [0, interval).
jit    = distance of each call after the first from the trigger's own grid
         first_call + (k-1)*interval (k = the nearest grid point: with "at or before",
         a call a hair less late than the first one would count as a whole interval late).
delivered = calls made in the run / (triggers * floor(duration / interval)).
CPU s/s = process CPU seconds (all threads) per wall second; 2.0 is both cores.
stop ms = how long stop() took; ">40 s": it had not returned when the worker was killed.
↓ lower is better, ↑ higher is better.  Ratios are agent_triggers / peer, one per round
(ours in round r / the peer's in round r), shown as their median and, in brackets, the
least and the greatest of them; the mark is the median ratio's:
  ✓ agent_triggers better by more than 5%, ✗ worse by more than 5%, = within 5%,
  ≈ both too small to compare (median stop under 1 ms, median idle CPU under 0.1%),
  "<" an upper bound: the peer's stop outlasted its timeout in some round."""


@dataclass(frozen=True)
class Spread:
    """One figure over the rounds: its median, least and greatest value, and from how
    many rounds."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values), len(values))

    def format(self, one: Callable[[float], str], mark: str = "") -> str:
        """``median [min-max]`` (``mark`` after the median), or one value from one round."""
        if self.rounds == 1:
            return one(self.median) + mark
        return f"{one(self.median)}{mark} [{one(self.low)}{DASH}{one(self.high)}]"


@dataclass
class Row:
    """One line of a table: a name and a cell per metric, or why there are no figures."""

    name: str
    cells: list[str] = field(default_factory=lambda: list[str]())
    status: str = ""


@dataclass
class Table:
    """One scenario: a row per implementation, then agent_triggers' ratio to each peer."""

    title: str
    headings: list[str]
    rows: list[Row]
    ratios: list[Row]  # named after the peer


def figure(run: dict[str, Any], metric: Metric) -> float | None:
    """``metric`` in one run. A stop that outlasted the worker's timeout is inf: longer
    than any stop measured, so it sorts last and a median on it is "more than"."""
    if metric is STOP and run["status"] == "stop_timeout":
        return math.inf
    return metric.value(run)


def build_tables(
    results: Sequence[dict[str, Any]], scenarios: Sequence[Scenario], impls: Sequence[str]
) -> list[Table]:
    tables: list[Table] = []
    for scenario in scenarios:
        runs = runs_by_impl(results, scenario, impls)
        rounds = max((len(impl_runs) for impl_runs in runs.values()), default=0)
        title = scenario.title
        if rounds > 1:
            title += f" ({rounds} rounds: median [min{DASH}max])"
        tables.append(build_table(title, METRICS[scenario.kind], runs))
    return tables


def build_table(title: str, metrics: list[Metric], runs: dict[str, list[dict[str, Any]]]) -> Table:
    rows = [_figure_row(impl, impl_runs, metrics) for impl, impl_runs in runs.items()]
    reference = [run for run in runs.get(REFERENCE, []) if has_figures(run)]
    ratios: list[Row] = []
    if reference:
        for peer, peer_runs in runs.items():
            measured = [run for run in peer_runs if has_figures(run)]
            if peer != REFERENCE and measured:
                ratios.append(_ratio_row(peer, len(peer_runs), reference, measured, metrics))
    return Table(title, [m.heading for m in metrics], rows, ratios)


def _figure_row(impl: str, runs: list[dict[str, Any]], metrics: list[Metric]) -> Row:
    measured = [run for run in runs if has_figures(run)]
    if not measured:
        return Row(impl, status=_statuses(runs))
    name = impl + _rounds_note(len(measured), len(runs))
    return Row(name, [_figure_cell(measured, metric) for metric in metrics])


def _rounds_note(measured: int, rounds: int) -> str:
    return "" if measured == rounds else f" ({measured} of {rounds} rounds)"


def _figure_cell(runs: list[dict[str, Any]], metric: Metric) -> str:
    values = [v for v in (figure(run, metric) for run in runs) if v is not None]
    spread = Spread.of(values)
    if spread is None:
        return "-"
    # Every stop that timed out outlasted the shortest of those timeouts.
    timeout = min((run["timeout_s"] for run in runs if "timeout_s" in run), default=0.0)

    def one(value: float) -> str:
        return f">{timeout:.0f} s" if math.isinf(value) else metric.format.format(value)

    if math.isinf(spread.low):  # every round's stop timed out: there is no spread to show
        return one(spread.low)
    return spread.format(one)


def _statuses(runs: list[dict[str, Any]]) -> str:
    """Why no round of a row has figures, with how many rounds each reason has."""
    reasons = Counter(_status(run) for run in runs)
    if len(runs) == 1:
        return next(iter(reasons))
    return "; ".join(f"{reason} ({n} of {len(runs)} rounds)" for reason, n in reasons.items())


def _status(run: dict[str, Any]) -> str:
    """Why a run has no figures."""
    status = run["status"]
    if status == "timeout":
        return f"TIMED OUT after {run['timeout_s']:.0f} s"
    if status == "skipped":
        return "SKIPPED: out of time budget"
    last_lines = run.get("error", "").splitlines()[-1:]
    return f"ERROR: {last_lines[0] if last_lines else '?'}"


def _ratio_row(
    peer: str,
    rounds: int,
    reference: list[dict[str, Any]],
    measured: list[dict[str, Any]],
    metrics: list[Metric],
) -> Row:
    """agent_triggers / ``peer``, from the rounds both have figures in."""
    ours = {run["round"]: run for run in reference}
    pairs = [(ours[run["round"]], run) for run in measured if run["round"] in ours]
    cells = [_ratio_cell(pairs, metric) for metric in metrics]
    return Row(peer + _rounds_note(len(pairs), rounds), cells)


def _ratio_cell(pairs: list[tuple[dict[str, Any], dict[str, Any]]], metric: Metric) -> str:
    """The per-round ratios' median [min-max] and its mark; "<" if any is a bound."""
    if metric.better is None:
        return ""
    ours: list[float] = []
    theirs: list[float] = []
    bound = False
    for reference, peer in pairs:
        a, b = figure(reference, metric), figure(peer, metric)
        if a is None or b is None or math.isinf(a):
            continue  # our stop timing out too leaves nothing to compare
        if math.isinf(b):  # the peer's stop took longer than its timeout: ours / that
            b, bound = peer["timeout_s"] * metric.scale, True
        ours.append(a)
        theirs.append(b)
    if not ours:
        return ""
    if max(statistics.median(ours), statistics.median(theirs)) <= metric.noise:
        return "≈"
    spread = Spread.of([a / b for a, b in zip(ours, theirs) if b != 0])
    if spread is None:
        return "n/a"
    mark = _mark(spread.median, metric)
    if bound and mark != "✓":
        mark = ""  # an upper bound shows only that we are better, if it is low enough
    return ("<" if bound else "") + spread.format(_format_ratio, mark)


def _mark(ratio: float, metric: Metric) -> str:
    if 0.95 <= ratio <= 1.05:
        return "="
    return "✓" if (ratio < 1) == (metric.better == "lower") else "✗"


def _format_ratio(ratio: float) -> str:
    if ratio >= 100:
        return f"{ratio:,.0f}"
    return f"{ratio:.2f}" if ratio >= 0.01 else f"{ratio:.2g}"


def render_text(tables: Sequence[Table]) -> str:
    """The tables as aligned plain text."""
    lines: list[str] = []
    for table in tables:
        ratio_names = [f"vs {row.name}" for row in table.ratios]
        name_width = max([16, *(len(row.name) for row in table.rows), *map(len, ratio_names)])
        filled = [row.cells for row in [*table.rows, *table.ratios] if row.cells]
        widths = [
            max([len(heading), *(len(cells[i]) for cells in filled)])
            for i, heading in enumerate(table.headings)
        ]
        header = [heading.rjust(width) for heading, width in zip(table.headings, widths)]
        lines += ["", f"== {table.title} ==", ""]
        lines.append("  ".join(["implementation".ljust(name_width), *header]))
        for row in table.rows:
            if not row.cells:
                lines.append(f"{row.name.ljust(name_width)}  {row.status}")
                continue
            cells = [cell.rjust(width) for cell, width in zip(row.cells, widths)]
            lines.append("  ".join([row.name.ljust(name_width), *cells]))
        if table.ratios:
            lines.append(f"{REFERENCE} / peer:")
        for name, row in zip(ratio_names, table.ratios):
            cells = [cell.rjust(width) for cell, width in zip(row.cells, widths)]
            lines.append("  ".join([name.ljust(name_width), *cells]).rstrip())
    return "\n".join(lines)


def render_markdown(tables: Sequence[Table]) -> str:
    """The tables as GitHub markdown, one per scenario, to paste as they are."""
    lines: list[str] = []
    for table in tables:
        lines += ["", f"### {table.title}", ""]
        lines.append(_markdown_row(["implementation", *table.headings]))
        lines.append("|---|" + "---:|" * len(table.headings))
        for row in table.rows:
            # Markdown has no cell spanning a row: the reason goes in the first cell.
            cells = row.cells or [row.status] + [""] * (len(table.headings) - 1)
            lines.append(_markdown_row([row.name, *cells]))
        for row in table.ratios:
            lines.append(_markdown_row([f"{REFERENCE} / {row.name}", *row.cells]))
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def format_notes(results: list[dict[str, Any]]) -> list[str]:
    notes: list[str] = []
    for r in results:
        where = f"round {r['round']}: {r['scenario']} x {r['impl']}"
        if r["status"] == "stop_timeout":
            notes.append(
                f"{where}: measured, but stopping had not finished when the worker was "
                f"killed after {r['timeout_s']:.0f} s; stop time reported as more than that."
            )
        elif r["status"] == "timeout":
            notes.append(f"{where}: timed out after {r['timeout_s']:.0f} s, no figures.")
        elif r["status"] == "skipped":
            notes.append(f"{where}: skipped, the run's time budget was spent.")
        elif r["status"] == "error":
            notes.append(f"{where}: the worker failed:\n{r.get('error', '')}")
    return notes


# --- JSON and the plot ------------------------------------------------------------------


def summarize(
    results: Sequence[dict[str, Any]], scenarios: Sequence[Scenario], impls: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per scenario and implementation, every figure's median, min and max over the rounds."""
    return {
        scenario.name: {
            impl: _summarize_runs(impl_runs)
            for impl, impl_runs in runs_by_impl(results, scenario, impls).items()
        }
        for scenario in scenarios
    }


def _summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, list[float]] = {}
    for run in runs:
        for key, value in _numbers(run).items():
            values.setdefault(key, []).append(value)
    figures: dict[str, dict[str, Any]] = {}
    for key, key_values in values.items():
        spread = Spread.of(key_values)
        if spread is not None:
            figures[key] = {
                "median": _finite(spread.median),
                "min": _finite(spread.low),
                "max": _finite(spread.high),
                "rounds": spread.rounds,
            }
    return {
        "rounds": len(runs),
        "measured_rounds": sum(1 for run in runs if has_figures(run)),
        "stop_timeouts": sum(1 for run in runs if run["status"] == "stop_timeout"),
        "figures": figures,
    }


def _numbers(run: dict[str, Any]) -> dict[str, float]:
    """A run's numeric figures under dotted keys ("error.p99_ms"), as the table sees them:
    a stop that outlasted the worker's timeout counts as inf (null in the JSON)."""
    numbers = dict(_leaves(run.get("figures") or {}, ""))
    if run["status"] == "stop_timeout":
        numbers["stop_s"] = math.inf
    return numbers


def _leaves(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, float]]:
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _leaves(cast("dict[str, Any]", value), f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", float(value)


def _finite(value: float) -> float | None:
    """JSON has no infinity: a bound (a stop longer than its timeout) is written null."""
    return None if math.isinf(value) else value


def write_json(
    path: Path,
    results: list[dict[str, Any]],
    summary: dict[str, dict[str, Any]],
    meta: dict[str, Any],
) -> None:
    document = {
        "meta": meta,
        "implementations": {name: impl.description for name, impl in IMPLEMENTATIONS.items()},
        "scenarios": {name: asdict(s) for name, s in SCENARIOS.items()},
        "quantile_levels": QUANTILE_LEVELS,
        "summary": summary,
        "runs": results,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def median_round(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The run whose err p99 is the median of the rounds' (the lower middle one for an
    even count): a real round's distribution, where a mix of rounds would be none."""
    ranked = sorted(
        (p99, index) for index, run in enumerate(runs) if (p99 := ERR_P99.value(run)) is not None
    )
    return runs[ranked[(len(ranked) - 1) // 2][1]] if ranked else None


def _quantiles(run: dict[str, Any], key: str) -> list[float]:
    """The quantiles (ms) of the error distribution ``key`` in ``run``'s figures, if any."""
    figures: dict[str, Any] = run.get("figures") or {}
    summary: dict[str, Any] = figures.get(key) or {}
    return list(summary.get("quantiles_ms") or [])


def plot_errors(
    path: Path, results: Sequence[dict[str, Any]], scenarios: Sequence[Scenario], impls: list[str]
) -> bool:
    """CDFs of the schedule errors per implementation: one panel per timing scenario."""
    measured = {r["scenario"] for r in results if has_figures(r)}
    timing = [s for s in scenarios if s.kind == "timing" and s.name in measured]
    if not timing:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    floor_ms = 1e-3  # log scale: a zero error is drawn at 1 µs
    rows = (
        ("error", "err: vs ideal time t0 + k·interval"),
        ("first_call_error", "jit: vs own grid from first call"),
    )
    fig, axes = plt.subplots(len(rows), len(timing), figsize=(5 * len(timing), 8), squeeze=False)
    for col, scenario in enumerate(timing):
        # One round per implementation, the same in both rows of panels.
        shown = {
            impl: median_round(impl_runs)
            for impl, impl_runs in runs_by_impl(results, scenario, impls).items()
        }
        for row_index, (key, what) in enumerate(rows):
            ax = axes[row_index][col]
            for impl, run in shown.items():
                quantiles = _quantiles(run, key) if run else []
                if run and quantiles:
                    xs = [max(q, floor_ms) for q in quantiles]
                    label = f"{impl} (round {run['round']})"
                    ax.step(xs, QUANTILE_LEVELS[: len(xs)], where="post", label=label)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_ylim(0, 1.01)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{scenario.name}: {what}", fontsize=10)
            ax.set_xlabel("ms (log)")
            ax.set_ylabel("fraction of calls ≤ x")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        "Schedule error per call (CDF; further left is better)\n"
        "each implementation's round with the median err p99"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --- main -------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in ("agent-triggers", "apscheduler"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--impl", action="append", choices=list(IMPLEMENTATIONS))
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"interleaved rounds (default {ROUNDS})"
    )
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds for all workers (default: scaled to the scenarios, implementations "
        "and rounds chosen)",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the tables as GitHub markdown"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    impls: list[str] = args.impl or list(IMPLEMENTATIONS)
    scenarios = [SCENARIOS[name] for name in args.scenario or SCENARIOS]
    rounds: int = args.rounds
    budget: float = args.budget or default_budget(scenarios, len(impls), rounds)
    print(
        f"{rounds} round(s) of {len(scenarios)} scenario(s) x {len(impls)} implementation(s): "
        f"about {expected_total(scenarios, len(impls), rounds):.0f} s expected (no timeouts), "
        f"budget {budget:.0f} s",
        file=sys.stderr,
    )

    started = time.perf_counter()
    results = run_all(impls, scenarios, rounds, budget)
    total = time.perf_counter() - started

    tables = build_tables(results, scenarios, impls)
    print(render_markdown(tables) if args.markdown else render_text(tables))
    print()
    print(TABLE_LEGEND)
    notes = format_notes(results)
    if notes:
        print("\nNotes:")
        for note in notes:
            print(f"- {note}")

    RESULTS.mkdir(exist_ok=True)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions(),
        "rounds": rounds,
        "order": "interleaved: each round runs every scenario x implementation once, "
        "the implementations rotated by one each round",
        "budget_s": budget,
        "timeouts_s": TIMEOUTS,
        "total_s": total,
        "notes": notes,
    }
    json_path = RESULTS / "results.json"
    write_json(json_path, results, summarize(results, scenarios, impls), meta)
    written = [json_path]
    plot_path = RESULTS / "errors.png"
    if plot_errors(plot_path, results, scenarios, impls):
        written.append(plot_path)
    print(f"\n{len(results)} runs in {total:.0f} s; wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
