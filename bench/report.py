"""The results as a text table (one row per workload, one column per target) and JSON."""

import json
from dataclasses import asdict, dataclass, field

from bench.workloads import WORKLOADS, Plan, Result

RATIO = ("netvol", "sshfs")  # the comparison the project is judged by


@dataclass
class TargetRun:
    name: str
    status: str = "ok"  # ok, unavailable (skipped) or failed
    reason: str = ""
    description: str = ""
    results: dict[str, Result] = field(default_factory=dict)


def size_text(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


def plan_text(plan: Plan) -> str:
    return (
        f"sequential {size_text(plan.size)} in 1 MiB chunks; "
        f"random 4 KiB on {size_text(plan.rand_size)}, "
        f"up to {plan.rand_ops} ops or {plan.rand_seconds:g} s each; "
        f"{plan.files} files of {size_text(plan.file_size)}; seed {plan.seed}"
    )


def _value(result: Result | None, unit: str) -> str:
    if result is None:
        return "-"
    return f"{result.value:.1f}" if unit == "MB/s" else f"{result.value:.0f}"


def table(runs: list[TargetRun]) -> str:
    shown = [run for run in runs if run.results]
    by_name = {run.name: run.results for run in shown}
    with_ratio = all(name in by_name for name in RATIO)
    header = ["workload", "unit", *(run.name for run in shown)]
    if with_ratio:
        header.append("/".join(RATIO))
    rows = [header]
    for workload in WORKLOADS:
        row = [workload.label, workload.unit]
        row += [_value(run.results.get(workload.key), workload.unit) for run in shown]
        if with_ratio:
            top, bottom = (by_name[name].get(workload.key) for name in RATIO)
            row.append(f"{top.value / bottom.value:.2f}" if top and bottom else "-")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render(plan: Plan, runs: list[TargetRun], notes: list[str]) -> str:
    lines = [f"workloads: {plan_text(plan)}", ""]
    if any(run.results for run in runs):
        lines += [table(runs), ""]
    for run in runs:
        if run.status == "unavailable":
            lines.append(f"{run.name}: UNAVAILABLE, skipped: {run.reason}")
        elif run.status == "failed":
            lines.append(f"{run.name}: FAILED: {run.reason}")
        if run.description:
            lines.append(f"{run.name}: {run.description}")
    lines += [f"note: {note}" for note in notes]
    return "\n".join(lines)


def to_json(plan: Plan, runs: list[TargetRun], notes: list[str]) -> str:
    units = {w.key: w.unit for w in WORKLOADS}
    targets = {
        run.name: {
            "status": run.status,
            "reason": run.reason,
            "description": run.description,
            "results": {
                key: {**asdict(result), "unit": units[key]} for key, result in run.results.items()
            },
        }
        for run in runs
    }
    return json.dumps({"plan": asdict(plan), "targets": targets, "notes": notes}, indent=2)
