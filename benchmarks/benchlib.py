"""What every benchmark of this folder shares: the machine it ran on, medians of
repeated runs, a Markdown table on stdout, and the `--json FILE` document.

Figures from a shared machine are only comparable with the load they were
taken under, so every document records the load average before and after
each run next to the figures.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Make `linectl` and `sim` importable when a benchmark runs as a script.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def load_average() -> float:
    """The 1-minute load average (the other engineers' tests included)."""
    return round(os.getloadavg()[0], 2)


def machine() -> dict[str, Any]:
    """The machine and the moment, for the README next to the figures."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_start": load_average(),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median_row(rows: list[dict[str, Any]], keep_max: Sequence[str] = ()) -> dict[str, Any]:
    """One row of the medians of repeated runs; keys in `keep_max` take the
    worst run instead (a sample lost in any run is not a median matter)."""
    out: dict[str, Any] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if key in keep_max:
            out[key] = max(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            m = statistics.median(values)
            out[key] = round(m, 6) if isinstance(m, float) else m
        else:
            out[key] = values[0]
    out["repeats"] = len(rows)
    return out


def print_table(columns: Sequence[tuple[str, str]], rows: list[dict[str, Any]]) -> None:
    """A Markdown table of `rows`: (key, heading) per column."""
    print("| " + " | ".join(h for _, h in columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        cells = []
        for key, _ in columns:
            v = r.get(key, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        print("| " + " | ".join(cells) + " |")


def write_json(path: str | None, doc: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")
