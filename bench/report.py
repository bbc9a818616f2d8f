"""The figures a bench run produces, and their Markdown: tables and the issue's targets."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TABLES = ("entries", "entry_versions", "captures", "events", "placements")
CYCLES = ("baseline", "unchanged", "changed")

# The targets.
UNCHANGED_VS_DOWNLOAD = 1.3
CHANGED_VS_PARSE = 1.5
PEAK_MB_AT_1000 = 120.0
WARC_PER_UNCHANGED_PAGE = 2048
DAEMON_PAGES_PER_S = 350.0  # at N=1000, the 10%-changed steady state (30 million a day)
LINEAR_SLACK = 1.25  # per-unit cost may grow this much from the small run to the large one
LINEAR_MIN_PAGES = 100  # the smallest N whose cost per page is judged


@dataclass
class Run:
    """One measured process: what it cost and what it left behind."""

    tool: str
    cycle: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    served: dict[str, int] = field(default_factory=dict)  # server's counts during the run
    warc_added: int | None = None
    db_bytes: int | None = None
    rows: dict[str, int] = field(default_factory=dict)
    walls: list[float] = field(default_factory=list)  # every try's wall time, when repeated

    @property
    def events(self) -> Counter[str]:
        lines = [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]
        return Counter(e.get("kind", "?") for e in lines)



@dataclass
class SizeResult:
    pages: int
    entries: int
    changed: int
    runs: list[Run]
    drift: list[Run] = field(default_factory=list)
    profiles: dict[str, Path] = field(default_factory=dict)
    steady: list[dict[str, float]] = field(default_factory=list)  # bench/steady.py's cycles
    steady_run: Run | None = None  # the whole steady.py process (its peak memory)

    def get(self, tool: str, cycle: str) -> Run:
        return next(r for r in self.runs if r.tool == tool and r.cycle == cycle)

    def find(self, tool: str, cycle: str) -> Run | None:
        return next((r for r in self.runs if r.tool == tool and r.cycle == cycle), None)



@dataclass
class EntryScaling:
    entries: int
    page_bytes: int
    baseline: Run
    changed: Run
    extract_s: float  # in-process, one extract_entries of the changed page
    classify_baseline_s: float
    classify_changed_s: float



def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor > 0 else "-"


def _served(run: Run) -> str:
    return f"{run.served.get('200', 0)}/{run.served.get('304', 0)}"


def size_table(result: SizeResult) -> str:
    """The markdown table of one size: every tool and cycle, monitor's ratios to its floor."""
    lines = [
        f"#### N = {result.pages} pages x {result.entries} entries, {result.changed} changed",
        "",
        "| cycle | tool | wall s | CPU s | peak MB | 200/304 | events | x wall | x CPU | x peak "
        "| x urlwatch wall | every try's wall s |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for cycle in CYCLES:
        floor = result.get("download floor" if cycle == "unchanged" else "parse floor", cycle)
        rival = result.find("urlwatch", cycle)
        for tool in ("monitor", "urlwatch", "download floor", "parse floor"):
            found = result.find(tool, cycle)
            if found is None:
                continue
            run = found
            events = ", ".join(f"{k} {v}" for k, v in sorted(run.events.items()))
            ratios = ["", "", "", ""]
            if tool == "monitor":
                ratios = [_ratio(run.wall_s, floor.wall_s), _ratio(run.cpu_s, floor.cpu_s),
                          _ratio(run.peak_mb, floor.peak_mb),
                          _ratio(run.wall_s, rival.wall_s) if rival else "-"]
            lines.append(
                f"| {cycle} | {tool} | {run.wall_s:.2f} | {run.cpu_s:.2f} | {run.peak_mb:.0f} "
                f"| {_served(run)} | {events if tool == 'monitor' else ''} | "
                + " | ".join(ratios) + f" | {' / '.join(f'{w:.2f}' for w in run.walls)} |"
            )
    return "\n".join(lines)


def growth_table(results: Sequence[SizeResult]) -> str:
    """Archive and database growth of each monitor cycle."""
    lines = [
        "| N | cycle | WARC added | per page | db+wal | entries | entry_versions | captures "
        "| events | placements |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        previous: dict[str, int] = {}
        for run in [result.get("monitor", c) for c in CYCLES] + result.drift:
            rows = " | ".join(
                f"{run.rows.get(t, 0)} (+{run.rows.get(t, 0) - previous.get(t, 0)})"
                for t in TABLES[:4]
            )
            added = run.warc_added or 0
            lines.append(
                f"| {result.pages} | {run.cycle} | {_kb(added)} | {added / result.pages:,.0f} B "
                f"| {_kb(run.db_bytes or 0)} | {rows} | {run.rows.get('placements', 0)} |"
            )
            previous = run.rows
    return "\n".join(lines)


def drift_table(result: SizeResult) -> str:
    """Unchanged cycles one after another: does the same work cost more as history grows?"""
    lines = ["| cycle | captures before | wall s | CPU s |", "|---|---:|---:|---:|"]
    runs = [result.get("monitor", "unchanged"), *result.drift]
    before = [result.get("monitor", "baseline").rows.get("captures", 0),
              result.get("monitor", "changed").rows.get("captures", 0)]
    before += [r.rows.get("captures", 0) for r in result.drift[:-1]]
    for run, captures in zip(runs, before, strict=True):
        lines.append(f"| {run.cycle} | {captures} | {run.wall_s:.2f} | {run.cpu_s:.2f} |")
    return "\n".join(lines)


def steady_table(result: SizeResult) -> str:
    """The daemon's back-to-back cycles in one process, against the download floor's rate."""
    floor = result.find("download floor", "changed")
    lines = ["| cycle | wall s | CPU s | events | pages/s |", "|---|---:|---:|---:|---:|"]
    for c in result.steady:
        lines.append(f"| {c['cycle']} | {c['wall_s']:.2f} | {c['cpu_s']:.2f} | "
                     f"{c['events']:.0f} | {c['pages_per_s']:.0f} |")
    if floor is not None:
        lines.append(f"| download floor, changed (whole process) | {floor.wall_s:.2f} | "
                     f"{floor.cpu_s:.2f} | | {result.pages / floor.wall_s:.0f} |")
    if result.steady_run is not None:
        lines.append(f"\nPeak memory of the daemon process (tree): "
                     f"{result.steady_run.peak_mb:.0f} MB")
    return "\n".join(lines)


def steady_rate(result: SizeResult) -> float | None:
    """Pages per second of the steady cycles (their median), or None if none ran."""
    rates = sorted(c["pages_per_s"] for c in result.steady if c["cycle"] != "first")
    return rates[len(rates) // 2] if rates else None


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} KB" if n < 10 * 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB"


def entry_table(rows: Sequence[EntryScaling]) -> str:
    lines = [
        "| entries | page | cycle wall s (base / changed) | CPU s (base / changed) | peak MB "
        "| extract us/entry | classify us/entry (base / changed) |",
        "|---:|---:|---|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.entries:,} | {_kb(r.page_bytes)}"
            f" | {r.baseline.wall_s:.2f} / {r.changed.wall_s:.2f}"
            f" | {r.baseline.cpu_s:.2f} / {r.changed.cpu_s:.2f}"
            f" | {max(r.baseline.peak_mb, r.changed.peak_mb):.0f}"
            f" | {r.extract_s / r.entries * 1e6:,.1f}"
            f" | {r.classify_baseline_s / r.entries * 1e6:,.1f} / "
            f"{r.classify_changed_s / r.entries * 1e6:,.1f} |"
        )
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def targets(results: Sequence[SizeResult], scaling: Sequence[EntryScaling],
            startup: Run) -> str:
    """The issue's targets, each met or not, with the figure that decides it."""
    lines = _urlwatch_targets(results)
    for r in results:
        m, d = r.get("monitor", "unchanged"), r.get("download floor", "unchanged")
        ratio = m.wall_s / d.wall_s
        lines.append(
            f"- N={r.pages}: unchanged cycle <= {UNCHANGED_VS_DOWNLOAD}x download floor: "
            f"{_verdict(ratio <= UNCHANGED_VS_DOWNLOAD)} ({ratio:.2f}x wall, "
            f"{m.cpu_s / d.cpu_s:.2f}x CPU)"
        )
        m, p = r.get("monitor", "changed"), r.get("parse floor", "changed")
        ratio = m.wall_s / p.wall_s
        lines.append(
            f"- N={r.pages}: {r.changed}-changed cycle <= {CHANGED_VS_PARSE}x parse floor: "
            f"{_verdict(ratio <= CHANGED_VS_PARSE)} ({ratio:.2f}x wall, "
            f"{m.cpu_s / p.cpu_s:.2f}x CPU)"
        )
    for r in results:
        rate = steady_rate(r)
        if r.pages >= 1000 and rate is not None:
            lines.append(
                f"- N={r.pages}: daemon steady state >= {DAEMON_PAGES_PER_S:.0f} page checks/s "
                f"(10% changed a cycle): {_verdict(rate >= DAEMON_PAGES_PER_S)} ({rate:.0f}/s, "
                "the median of the steady cycles)"
            )
    for r in results:
        if r.pages >= 1000:
            peak = max(r.get("monitor", c).peak_mb for c in CYCLES)
            lines.append(
                f"- N={r.pages}: peak memory <= {PEAK_MB_AT_1000:.0f} MB: "
                f"{_verdict(peak <= PEAK_MB_AT_1000)} ({peak:.0f} MB)"
            )
    for r in results:
        u, c = r.get("monitor", "unchanged"), r.get("monitor", "baseline")
        new_rows = sum(u.rows.get(t, 0) - c.rows.get(t, 0) for t in ("entries", "entry_versions"))
        per_page = (u.warc_added or 0) / r.pages
        ok = new_rows == 0 and per_page <= WARC_PER_UNCHANGED_PAGE and not u.events
        lines.append(
            f"- N={r.pages}: unchanged cycle adds no entry rows and <= 2 KB WARC per page: "
            f"{_verdict(ok)} ({new_rows} entry rows, {per_page:,.0f} B/page, "
            f"{sum(u.events.values())} events)"
        )
    # From the smallest N of LINEAR_MIN_PAGES or more: a check of 10 pages is ~5 ms of work
    # after ~170 ms of startup, less than the error of the startup figure it is measured by.
    sized = [r for r in results if r.pages >= LINEAR_MIN_PAGES]
    if len(sized) >= 2:
        small, large = sized[0], sized[-1]
        for cycle in CYCLES:
            a, b = small.get("monitor", cycle), large.get("monitor", cycle)
            per_a = (a.wall_s - startup.wall_s) / small.pages
            per_b = (b.wall_s - startup.wall_s) / large.pages
            cpu_a = (a.cpu_s - startup.cpu_s) / small.pages
            cpu_b = (b.cpu_s - startup.cpu_s) / large.pages
            ok = per_b <= LINEAR_SLACK * per_a and cpu_b <= LINEAR_SLACK * cpu_a
            lines.append(
                f"- {cycle} cycle linear in N ({small.pages} -> {large.pages} pages, per page "
                f"after startup): {_verdict(ok)} (wall {per_a * 1e3:.2f} -> {per_b * 1e3:.2f} ms,"
                f" CPU {cpu_a * 1e3:.2f} -> {cpu_b * 1e3:.2f} ms)"
            )
    if len(scaling) >= 3:
        # Marginal cost per entry, first step against last: a page's fixed cost (chrome,
        # startup) cancels out, so equal figures mean linear.
        first, middle, last = scaling[0], scaling[-2], scaling[-1]
        measures = (
            ("extract (in-process)", lambda e: e.extract_s),
            ("classify, changed (in-process)", lambda e: e.classify_changed_s),
            ("whole changed cycle (CPU)", lambda e: e.changed.cpu_s),
        )
        for label, cost in measures:
            a = (cost(scaling[1]) - cost(first)) / (scaling[1].entries - first.entries)
            b = (cost(last) - cost(middle)) / (last.entries - middle.entries)
            lines.append(
                f"- {label} linear in entries per page (marginal cost per entry, "
                f"{first.entries:,}->{scaling[1].entries:,} vs {middle.entries:,}->"
                f"{last.entries:,}): {_verdict(b <= LINEAR_SLACK * a)} "
                f"({a * 1e6:,.0f} -> {b * 1e6:,.0f} us/entry)"
            )
    return "\n".join(lines)



CHANGED_VS_URLWATCH = 0.8


def _urlwatch_targets(results: Sequence[SizeResult]) -> list[str]:
    """Every phase at or below urlwatch; the changed cycle at most 0.8x; peak at or below."""
    lines = []
    for r in results:
        if r.find("urlwatch", "baseline") is None:
            continue
        for cycle in CYCLES:
            m, u = r.get("monitor", cycle), r.get("urlwatch", cycle)
            limit = CHANGED_VS_URLWATCH if cycle == "changed" else 1.0
            ratio = m.wall_s / u.wall_s
            lines.append(
                f"- N={r.pages}: {cycle} wall <= {limit}x urlwatch: "
                f"{_verdict(ratio <= limit)} ({m.wall_s:.2f} s vs {u.wall_s:.2f} s, {ratio:.2f}x)"
            )
        peak = max(r.get("monitor", c).peak_mb for c in CYCLES)
        upeak = max(r.get("urlwatch", c).peak_mb for c in CYCLES)
        lines.append(
            f"- N={r.pages}: peak memory (process tree) <= urlwatch's: "
            f"{_verdict(peak <= upeak)} ({peak:.0f} MB vs {upeak:.0f} MB)"
        )
    return lines
