"""The whole site against its bound, and how much faster than real time it keeps
every deadline.

One run (the default): `linectl demo` in-process (simulator and daemon, real
sockets and ptys, one clock at `--time-scale`) prints one row per line:
steady-state vehicles per hour, the bound, their ratio; the real time taken,
the process's CPU time and peak memory (simulator and daemon together: one
process), the load average before and after; and the deadlines the daemon
kept or missed:

- `guide_late`: brake runs not judged because the APPLY prompt reached the
  guide display too late (the brake procedure's own check, in simulated time);
- `phase_missed`: emission idle phases started over because a reading of the
  once-a-second series was missed (`too_few_readings`, logged by the station);
- `loop_lag_ms`: the most the event loop fell behind, in real milliseconds
  (the demo's `LagMeter`: a 50 ms sleep, timed);

the run keeps every deadline when the first two are 0 and the lag is under
`--max-lag-ms` (50).

`--search 1,2,8`: for each number of lines, the largest time scale at which
one run of `--vehicles-per-line` vehicles a line keeps every deadline: the
scale doubles from `--from-scale` until a run misses, then the interval is
bisected `--bisect` times. Each trial is its own process (a fresh loop, a
fresh clock). Then, with `--day-hours H`, a two-line day at the largest scale
found for two lines (or `--day-scale`): a morning queue of as many vehicles as the bound lets
through in H hours (measured: real seconds for its simulated seconds), and
what a 10-hour day would take at that pace: real seconds x 10 / H.

    .venv/bin/python benchmarks/throughput.py --lines 2 --vehicles 200 --time-scale 60
    .venv/bin/python benchmarks/throughput.py --search 1,2,8 --day-hours 1 --json site.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

from linectl.demo import run_demo
from linectl.stations.emission_judge import TOO_FEW_READINGS


class PhaseCounter(logging.Handler):
    """Counts the emission station's restarted phases for a missed reading."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.missed = 0

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "phase invalid" in msg and TOO_FEW_READINGS in msg:
            self.missed += 1


def guide_late(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as c:
        return int(
            c.execute("SELECT count(*) FROM attempts WHERE reason = 'guide_late'").fetchone()[0]
        )


def one_run(a: argparse.Namespace) -> dict[str, Any]:
    machine = benchlib.machine()
    phases = PhaseCounter()
    emission_log = logging.getLogger("linectl.stations.emission")
    emission_log.addHandler(phases)
    emission_log.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        args = argparse.Namespace(
            lines=a.lines,
            vehicles=a.vehicles,
            time_scale=a.time_scale,
            seed=a.seed,
            db=f"sqlite:///{db}",
            site="bench",
            mqtt=None,
        )
        t0, cpu0 = time.monotonic(), time.process_time()
        doc = asyncio.run(run_demo(args, out=io.StringIO()))
        real, cpu = time.monotonic() - t0, time.process_time() - cpu0
        late = guide_late(db)
    emission_log.removeHandler(phases)
    lag_ms = 1000 * doc.get("loop_lag_max_clock_s", 0.0) / a.time_scale
    ratios = [ln["of_bound"] for ln in doc["lines"] if ln["of_bound"]]
    return {
        "machine": machine | {"load_avg_end": benchlib.load_average()},
        "args": {k: v for k, v in vars(a).items() if k != "json"},
        "lines_n": a.lines,
        "time_scale": a.time_scale,
        "real_s": round(real, 1),
        "simulated_s": doc["simulated_s"],
        "cpu_s": round(cpu, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "verdicts_as_built": sum(r["matches_expectation"] for r in doc["inspections"]),
        "vehicles": len(doc["inspections"]),
        "guide_late": late,
        "phase_missed": phases.missed,
        "loop_lag_ms": round(lag_ms, 1),
        "kept": late == 0 and phases.missed == 0 and lag_ms < a.max_lag_ms,
        "min_of_bound": round(min(ratios), 3) if ratios else None,
        "lines": doc["lines"],
    }


def print_run(r: dict[str, Any]) -> None:
    m = r["machine"]
    print(
        f"{r['lines_n']} line(s), {r['vehicles']} vehicles, time scale {r['time_scale']:g}: "
        f"{r['real_s']:.0f} s real, {r['simulated_s'] / 60:.0f} simulated min, "
        f"CPU {r['cpu_s']:.0f} s ({100 * r['cpu_s'] / max(r['real_s'], 0.1):.0f} % of a core), "
        f"peak RSS {r['peak_rss_mib']} MiB, {r['verdicts_as_built']}/{r['vehicles']} verdicts "
        f"as built; guide_late {r['guide_late']}, phases missed {r['phase_missed']}, loop lag "
        f"{r['loop_lag_ms']} ms; load average {m['load_avg_start']} .. {m['load_avg_end']}"
    )
    print("| line | vehicles | steady-state veh/h | bound veh/h | of bound | limited by |")
    print("|---|---|---|---|---|---|")
    for ln in r["lines"]:
        ratio = f"{100 * ln['of_bound']:.1f} %" if ln["of_bound"] else "-"
        print(
            f"| {ln['line']} | {ln['vehicles']} | {ln['vehicles_per_hour']} | "
            f"{ln['bound_per_hour']} | {ratio} | {ln['limited_by']} |"
        )


def trial(a: argparse.Namespace, lines: int, scale: float, vehicles: int) -> dict[str, Any]:
    """One run in a process of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        cmd = [sys.executable, __file__, "--lines", str(lines), "--vehicles", str(vehicles)]
        cmd += ["--time-scale", f"{scale:g}", "--seed", str(a.seed), "--json", str(out)]
        cmd += ["--max-lag-ms", str(a.max_lag_ms)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        r: dict[str, Any] = json.loads(out.read_text())
    print(
        f"  {lines} line(s) x{scale:g}: kept={r['kept']} guide_late={r['guide_late']} "
        f"phases missed={r['phase_missed']} lag={r['loop_lag_ms']} ms, {r['real_s']} s real, "
        f"load {r['machine']['load_avg_start']}",
        file=sys.stderr,
    )
    return r


def search(a: argparse.Namespace, lines: int) -> dict[str, Any]:
    vehicles = a.vehicles_per_line * lines
    tried: list[dict[str, Any]] = []

    def ok(scale: float) -> bool:
        r = trial(a, lines, scale, vehicles)
        keep = ("time_scale", "kept", "guide_late", "phase_missed", "loop_lag_ms", "real_s")
        tried.append({k: r[k] for k in keep} | {"load": r["machine"]["load_avg_start"]})
        return bool(r["kept"])

    good, bad = 0.0, None
    scale = a.from_scale
    while bad is None and scale <= a.max_scale:
        if ok(scale):
            good, scale = scale, scale * 2
        else:
            bad = scale
    if bad is not None:
        lo, hi = good, bad
        for _ in range(a.bisect):
            mid = round((lo + hi) / 2) if lo else round(hi / 2)
            if mid in (lo, hi):
                break
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        good = lo
    return {
        "lines": lines,
        "vehicles": vehicles,
        "max_scale": good,
        "first_missed": bad,
        "tried": tried,
    }


def day(a: argparse.Namespace, scale: float) -> dict[str, Any]:
    """A two-line morning queue lasting about `--day-hours` at the bound."""
    vehicles = round(a.day_hours * a.day_rate_per_line * 2)
    r = trial(a, 2, scale, vehicles)
    per_sim = r["real_s"] / r["simulated_s"]
    return {
        "lines": 2,
        "time_scale": scale,
        "vehicles": vehicles,
        "real_s": r["real_s"],
        "simulated_s": r["simulated_s"],
        "ten_hour_day_real_s": round(per_sim * 36_000),
        "min_of_bound": r["min_of_bound"],
        "kept": r["kept"],
        "guide_late": r["guide_late"],
        "phase_missed": r["phase_missed"],
        "loop_lag_ms": r["loop_lag_ms"],
        "load": f"{r['machine']['load_avg_start']} .. {r['machine']['load_avg_end']}",
        "per_line": [
            {k: ln[k] for k in ("line", "vehicles", "vehicles_per_hour", "bound_per_hour")}
            | {"of_bound": ln["of_bound"]}
            for ln in r["lines"]
        ],
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--lines", type=int, default=2)
    p.add_argument("--vehicles", type=int, default=200)
    p.add_argument("--time-scale", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-lag-ms", type=float, default=50.0)
    p.add_argument("--search", metavar="LINES", help="e.g. 1,2,8: the largest scale kept")
    p.add_argument("--vehicles-per-line", type=int, default=4, help="per trial of the search")
    p.add_argument("--from-scale", type=float, default=25.0)
    p.add_argument("--max-scale", type=float, default=1600.0)
    p.add_argument("--bisect", type=int, default=2)
    p.add_argument("--day-hours", type=float, default=0.0, help="the two-line day measured")
    p.add_argument("--day-scale", type=float, default=0.0, help="the day at this scale")
    p.add_argument("--day-rate-per-line", type=float, default=30.0, help="vehicles an hour")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    if not a.search and not a.day_scale:
        r = one_run(a)
        print_run(r)
        benchlib.write_json(a.json, r)
        return
    doc: dict[str, Any] = {"machine": benchlib.machine(), "args": vars(a)}
    doc["search"] = [search(a, int(n)) for n in a.search.split(",")] if a.search else []
    two = [s["max_scale"] for s in doc["search"] if s["lines"] == 2]
    scale = a.day_scale or (two[0] if two else 0)
    if a.day_hours and scale:
        doc["day"] = day(a, scale)
    doc["machine"]["load_avg_end"] = benchlib.load_average()
    m = doc["machine"]
    print(
        f"time scale kept, {m['date']}, {m['cpu']} x{m['cores']}; load average "
        f"{m['load_avg_start']} .. {m['load_avg_end']}; {a.vehicles_per_line} vehicles a line "
        f"a trial, deadlines: no guide_late, no phase missed, loop lag < {a.max_lag_ms:g} ms"
    )
    print(
        "| lines | largest scale kept | first scale missed | trials (scale: kept, lag ms, load) |"
    )
    print("|---|---|---|---|")
    for s in doc["search"]:
        trials = "; ".join(
            f"{t['time_scale']:g}: {'yes' if t['kept'] else 'no'}, {t['loop_lag_ms']}, {t['load']}"
            for t in s["tried"]
        )
        print(f"| {s['lines']} | {s['max_scale']:g} | {s['first_missed']} | {trials} |")
    if "day" in doc:
        d = doc["day"]
        print()
        print("| two-line day at scale | vehicles | real s | simulated s | 10-hour day real s | "
              "worst line of bound | deadlines kept | load |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        print(
            f"| {d['time_scale']:g} | {d['vehicles']} | {d['real_s']} | {d['simulated_s']} | "
            f"{d['ten_hour_day_real_s']} | {d['min_of_bound']} | {d['kept']} | {d['load']} |"
        )
    benchlib.write_json(a.json, doc)


if __name__ == "__main__":
    main()
