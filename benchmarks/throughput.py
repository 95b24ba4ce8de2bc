"""Throughput of simulated lines against their bound, and what it costs to run.

Runs `linectl demo` in-process (simulator and daemon, real sockets and ptys)
and prints one results row per line: steady-state vehicles per hour, the bound,
their ratio, plus the real time taken, the process's CPU time and peak memory
(simulator and daemon together: one process), and the load average before and
after. Usage:

    .venv/bin/python benchmarks/throughput.py [--lines 2] [--vehicles 200] [--time-scale 60] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import tempfile
import time
from pathlib import Path

import benchlib

from linectl.demo import run_demo


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--lines", type=int, default=2)
    p.add_argument("--vehicles", type=int, default=200)
    p.add_argument("--time-scale", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    machine = benchlib.machine()
    with tempfile.TemporaryDirectory() as tmp:
        args = argparse.Namespace(
            lines=a.lines,
            vehicles=a.vehicles,
            time_scale=a.time_scale,
            seed=a.seed,
            db=f"sqlite:///{Path(tmp) / 'bench.db'}",
            site="bench",
            mqtt=None,
        )
        t0, cpu0 = time.monotonic(), time.process_time()
        doc = asyncio.run(run_demo(args, out=io.StringIO()))
        real, cpu = time.monotonic() - t0, time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    matched = sum(r["matches_expectation"] for r in doc["inspections"])
    print(
        f"{a.lines} line(s), {a.vehicles} vehicles, time scale {a.time_scale:g}: "
        f"{real:.0f} s real, {doc['simulated_s'] / 60:.0f} simulated min, "
        f"CPU {cpu:.0f} s ({100 * cpu / real:.0f} % of a core), peak RSS {rss_mb:.0f} MiB, "
        f"{matched}/{len(doc['inspections'])} verdicts as built; load average "
        f"{machine['load_avg_start']} .. {benchlib.load_average()}"
    )
    print("| line | vehicles | steady-state veh/h | bound veh/h | of bound | limited by |")
    print("|---|---|---|---|---|---|")
    for ln in doc["lines"]:
        ratio = f"{100 * ln['of_bound']:.1f} %" if ln["of_bound"] else "-"
        print(
            f"| {ln['line']} | {ln['vehicles']} | {ln['vehicles_per_hour']} | {ln['bound_per_hour']} "
            f"| {ratio} | {ln['limited_by']} |"
        )
    machine["load_avg_end"] = benchlib.load_average()
    benchlib.write_json(
        a.json,
        {
            "machine": machine,
            "args": vars(a),
            "real_s": round(real, 1),
            "simulated_s": doc["simulated_s"],
            "cpu_s": round(cpu, 1),
            "peak_rss_mib": round(rss_mb),
            "verdicts_as_built": matched,
            "vehicles": len(doc["inspections"]),
            "lines": doc["lines"],
        },
    )


if __name__ == "__main__":
    main()
