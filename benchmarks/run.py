"""Run every scenario against every implementation, each in its own worker process.

    python benchmarks/run.py [--impl NAME ...] [--scenario NAME ...] [--budget SECONDS]

Prints a table of the figures (and agent_triggers' ratio to each peer), and writes
benchmarks/results/results.json and benchmarks/results/errors.png. Each worker has a
timeout, and the whole run a time budget: a worker that runs out of either is
reported as timed out (with the figures it had measured, if it got that far), and one
that would start with too little budget left is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from implementations import IMPLEMENTATIONS
from scenarios import QUANTILE_LEVELS, SCENARIOS, Scenario

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
RESULTS = HERE / "results"
REFERENCE = "agent_triggers"

# Seconds a worker may take, by scenario kind (startup and stopping included).
TIMEOUTS = {"timing": 30.0, "scale": 90.0, "throughput": 40.0}
# The whole run's workers share this many seconds (``make bench`` must stay < 5 min).
BUDGET = 240.0
# A worker is not started with less budget left than this.
MIN_START = 8.0


# --- running the workers ----------------------------------------------------------------


def run_worker(impl: str, scenario: Scenario, timeout: float) -> dict[str, Any]:
    """One worker process; its last JSON line, or why there is none."""
    command = [sys.executable, str(WORKER), impl, scenario.name]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        stdout, stderr, timed_out = done.stdout, done.stderr, False
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
    elif done.returncode != 0:
        result["status"] = "error"
        result["error"] = "\n".join(stderr.strip().splitlines()[-5:])
    return result


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def run_all(impls: list[str], scenarios: list[Scenario], budget: float) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + budget
    total = len(impls) * len(scenarios)
    for scenario in scenarios:
        for impl in impls:
            left = deadline - time.monotonic()
            timeout = min(TIMEOUTS[scenario.kind], left)
            label = f"[{len(results) + 1:2}/{total}] {scenario.name} x {impl}"
            result: dict[str, Any]
            if left < MIN_START:
                result = {"impl": impl, "scenario": scenario.name, "status": "skipped"}
                result.update(triggers=scenario.triggers)
            else:
                print(f"{label} ...", end="", file=sys.stderr, flush=True)
                result = run_worker(impl, scenario, timeout)
                print(f" {result['status']} ({result['elapsed_s']:.1f} s)", file=sys.stderr)
            results.append(result)
    return results


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
            node = node.get(key)
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

TABLE_LEGEND = """\
err, jit: in ms.
err    = lateness of each call against its ideal time t0 + k*interval (t0 = the start()
         call, k = the grid point at or before the call); every value is in [0, interval).
jit    = distance of each call after the first from the trigger's own grid
         first_call + (k-1)*interval (k = the nearest grid point: with "at or before",
         a call a hair less late than the first one would count as a whole interval late).
delivered = calls made in the run / (triggers * floor(duration / interval)).
CPU s/s = process CPU seconds (all threads) per wall second; 2.0 is both cores.
↓ lower is better, ↑ higher is better.  Ratios are agent_triggers / peer:
  ✓ agent_triggers better by more than 5%, ✗ worse by more than 5%, = within 5%,
  ≈ both too small to compare (stop under 1 ms, idle CPU under 0.1%)."""


def format_table(results: list[dict[str, Any]], scenarios: list[Scenario]) -> str:
    lines: list[str] = []
    for scenario in scenarios:
        rows = [r for r in results if r["scenario"] == scenario.name]
        metrics = METRICS[scenario.kind]
        lines += ["", f"== {scenario.title} ==", ""]
        name_width = max(16, *(len(f"vs {r['impl']}") for r in rows))
        widths = [max(len(m.heading), 9) for m in metrics]
        header = [m.heading.rjust(w) for m, w in zip(metrics, widths)]
        lines.append("  ".join(["implementation".ljust(name_width), *header]))
        for row in rows:
            if row.get("figures") is None:
                lines.append(f"{row['impl'].ljust(name_width)}  {_status(row)}")
                continue
            cells = [_cell(row, m).rjust(w) for m, w in zip(metrics, widths)]
            lines.append("  ".join([row["impl"].ljust(name_width), *cells]))
        reference = next((r for r in rows if r["impl"] == REFERENCE), None)
        if reference is None or reference.get("figures") is None:
            continue
        lines.append(f"{REFERENCE} / peer:")
        for row in rows:
            if row is reference or row.get("figures") is None:
                continue
            cells = [_ratio(reference, row, m).rjust(w) for m, w in zip(metrics, widths)]
            lines.append("  ".join([f"vs {row['impl']}".ljust(name_width), *cells]).rstrip())
    return "\n".join(lines)


def _cell(row: dict[str, Any], metric: Metric) -> str:
    if metric is STOP and row["status"] == "stop_timeout":
        return f">{row['timeout_s']:.0f} s"
    value = metric.value(row)
    return "-" if value is None else metric.format.format(value)


def _status(row: dict[str, Any]) -> str:
    """Why a row has no figures."""
    status = row["status"]
    if status == "timeout":
        return f"TIMED OUT after {row['timeout_s']:.0f} s"
    if status == "skipped":
        return "SKIPPED: out of time budget"
    last_lines = row.get("error", "").splitlines()[-1:]
    return f"ERROR: {last_lines[0] if last_lines else '?'}"


def _ratio(reference: dict[str, Any], peer: dict[str, Any], metric: Metric) -> str:
    ours, theirs = metric.value(reference), metric.value(peer)
    if metric is STOP and peer["status"] == "stop_timeout" and ours is not None:
        return f"<{ours / (peer['timeout_s'] * 1000):.4f}✓"  # the peer's is only a bound
    if metric.better is None or ours is None or theirs is None:
        return ""
    if max(ours, theirs) <= metric.noise:
        return "≈"
    if theirs == 0:
        return "n/a"
    ratio = ours / theirs
    if 0.95 <= ratio <= 1.05:
        mark = "="
    elif (ratio < 1) == (metric.better == "lower"):
        mark = "✓"
    else:
        mark = "✗"
    return f"{ratio:.2f}{mark}" if ratio < 100 else f"{ratio:,.0f}{mark}"


def format_notes(results: list[dict[str, Any]]) -> list[str]:
    notes = []
    for r in results:
        where = f"{r['scenario']} x {r['impl']}"
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


def write_json(path: Path, results: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    document = {
        "meta": meta,
        "implementations": {name: impl.description for name, impl in IMPLEMENTATIONS.items()},
        "scenarios": {name: asdict(s) for name, s in SCENARIOS.items()},
        "quantile_levels": QUANTILE_LEVELS,
        "runs": results,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def plot_errors(path: Path, results: list[dict[str, Any]], impls: list[str]) -> bool:
    """CDFs of the schedule errors per implementation: one panel per timing scenario."""
    measured = {r["scenario"] for r in results if r.get("figures")}
    timing = [s for s in SCENARIOS.values() if s.kind == "timing" and s.name in measured]
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
        for row_index, (key, what) in enumerate(rows):
            ax = axes[row_index][col]
            for impl in impls:
                run = next(
                    (r for r in results if r["scenario"] == scenario.name and r["impl"] == impl),
                    None,
                )
                quantiles = ((run or {}).get("figures") or {}).get(key, {}).get("quantiles_ms")
                if quantiles:
                    xs = [max(q, floor_ms) for q in quantiles]
                    ax.step(xs, QUANTILE_LEVELS[: len(xs)], where="post", label=impl)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_ylim(0, 1.01)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{scenario.name}: {what}", fontsize=10)
            ax.set_xlabel("ms (log)")
            ax.set_ylabel("fraction of calls ≤ x")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Schedule error per call (CDF; further left is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --- main -------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found = {}
    for dist in ("agent-triggers", "apscheduler"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", action="append", choices=list(IMPLEMENTATIONS))
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds for all workers")
    args = parser.parse_args()
    impls: list[str] = args.impl or list(IMPLEMENTATIONS)
    scenarios = [SCENARIOS[name] for name in args.scenario or SCENARIOS]

    started = time.perf_counter()
    results = run_all(impls, scenarios, args.budget)
    total = time.perf_counter() - started

    print(format_table(results, scenarios))
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
        "budget_s": args.budget,
        "timeouts_s": TIMEOUTS,
        "total_s": total,
        "notes": notes,
    }
    json_path = RESULTS / "results.json"
    write_json(json_path, results, meta)
    written = [json_path]
    plot_path = RESULTS / "errors.png"
    if plot_errors(plot_path, results, impls):
        written.append(plot_path)
    print(f"\n{len(results)} runs in {total:.0f} s; wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
