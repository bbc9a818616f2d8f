"""py-spy's raw stacks summed up: where a profiled cycle's time goes, as Markdown tables."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PROFILE_RATE = 250  # py-spy samples per second

# Stages of a cycle, by the function whose frame a sample is in; the innermost listed
# frame of a sample's stack names its stage (so similarity is not counted as classify).
STAGES = (
    ("fetch: httpx + waiting on the network", (("fetch_target", "monitor/fetch.py"),)),
    ("event loop idle (select)", (("select", "selectors.py"),)),
    ("archive: build + gzip + write WARC records",
     (("write_exchange", "monitor/archive/writer.py"),)),
    ("archive: fsync + close", (("close", "monitor/archive/writer.py"),
                                ("sync", "monitor/archive/writer.py"))),
    ("304 path: re-read archived body", (("reload_body", "monitor/listing.py"),)),
    ("body key (sha256)", (("listing_key", "monitor/observe.py"),)),
    ("extract (selectolax)", (("extract_page", "monitor/extract/__init__.py"),)),
    ("parse pool: start + hand over", (("extract", "monitor/parsing.py"),
                                       ("parser_for", "monitor/parsing.py"))),
    ("load state: read_cycle_state", (("read_cycle_state", "monitor/store/sqlite.py"),)),
    ("re-derive stale pages", (("rederive_stale", "monitor/rederive.py"),)),
    ("classify: judge pages", (("judge_pages", "monitor/judge.py"),)),
    ("classify: match identities (strong tiers)", (("match_cycle", "monitor/match.py"),)),
    ("classify: description similarity", (("_match_similar", "monitor/match.py"),)),
    ("classify: outcomes + events", (("classify_cycle", "monitor/classify.py"),)),
    ("render changes (word diffs)", (("_rendered", "monitor/check.py"),)),
    ("store: record_cycle", (("write_cycle", "monitor/store/sqlite_write.py"),)),
    ("store: commit", (("transaction", "monitor/store/sqlite.py"),)),
    ("feed: query + render + write", (("_publish", "monitor/check.py"),)),
    ("notify: deliver", (("deliver_outbox", "monitor/notify/deliver.py"),)),
    ("load config", (("load_config", "monitor/config/load.py"),)),
    ("open database", (("SqliteStore.__init__", "monitor/store/sqlite.py"),
                       ("__init__", "monitor/store/sqlite.py"))),
)
OUTSIDE = "startup and exit: interpreter, imports, CLI, printing"
INSIDE = "other, inside run_check"
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(path: str) -> str:
    """A frame's file from its package down: site-packages, the stdlib, or the measured tree."""
    library = re.search(r"(?:site-packages|/lib/python3\.\d+)/(.*)", path)
    if library:
        return library.group(1)
    if "/monitor/" in path:
        return "monitor/" + path.rsplit("/monitor/", 1)[1]
    return path


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for frame in stack.split(";"):
        m = _FRAME.match(frame)
        frames.append((m["name"], _short(m["file"])) if m else (frame, ""))
    return frames


@dataclass
class Profile:
    """A py-spy raw profile, summed: own (self) and inclusive samples per function, stages."""

    samples: int
    own: Counter[tuple[str, str]]
    total: Counter[tuple[str, str]]
    stages: Counter[str]


def read_profile(path: Path) -> Profile:
    own: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    stages: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = _frames(stack)
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
        stages[_stage(frames)] += n
    return Profile(samples, own, total, stages)


def _stage(frames: list[tuple[str, str]]) -> str:
    """The stage of one sample: its innermost frame that STAGES names."""
    for name, file in reversed(frames):
        for label, keys in STAGES:
            for function, suffix in keys:
                named = name == function or name.endswith("." + function)
                if named and file.endswith(suffix):
                    return label
    inside = any(name == "run_check" for name, _ in frames)
    return INSIDE if inside else OUTSIDE


def profile_report(profile: Profile, wall_s: float, top: int = 15) -> str:
    """Stages, then the top functions by own and by inclusive time, as markdown."""
    def secs(n: int) -> str:
        share = n / profile.samples if profile.samples else 0.0
        return f"{share * 100:5.1f}% | {share * wall_s:6.2f}"

    lines = [f"{profile.samples} samples at {PROFILE_RATE} Hz (idle included); seconds scaled "
             f"to the unprofiled cycle's {wall_s:.2f} s wall", "",
             "| stage (innermost frame) | share | s |", "|---|---:|---:|"]
    for label, n in profile.stages.most_common():
        lines.append(f"| {label} | {secs(n)} |")
    lines += ["", "| top functions by own time | share | s |", "|---|---:|---:|"]
    for (name, file), n in profile.own.most_common(top):
        lines.append(f"| `{name}` ({file}) | {secs(n)} |")
    lines += ["", "| top monitor functions by inclusive time | share | s |", "|---|---:|---:|"]
    ours = [(k, n) for k, n in profile.total.most_common() if k[1].startswith("monitor/")
            and k[0] not in ("<module>", "main", "invoke", "check", "run_check", "_cycle")]
    for (name, file), n in ours[:top]:
        lines.append(f"| `{name}` ({file}) | {secs(n)} |")
    return "\n".join(lines)

