"""Assignment policies compared: choice per draw, queue jumps, throughput, a colluder.

Runs each policy on the discrete-event line of sim/assignment_line.py (the
policy code of linectl.scheduler.assign, service times as the full demo
measured them, a morning queue so the line is saturated, one driver of four
colluding) over several seeds, and prints the table of benchmarks/README.md
("Assignment policies"); `--json FILE` writes every run. Usage:

    .venv/bin/python benchmarks/assignment.py [--vehicles 400] [--seeds 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from statistics import fmean

from linectl.scheduler.assign import DEFAULT_POLICY, AssignmentPolicy, policy
from sim.assignment_line import Outcome, run

# (policy, check-in) rows of the table: today's draw first, then each idea and
# the neighbours of the chosen parameters, to show why they were chosen.
ROWS: list[tuple[AssignmentPolicy, str]] = [
    (policy("idle"), "timer"),
    (policy("idle"), "input"),
    (policy("window", window=2), "input"),
    (policy("window"), "input"),
    (policy("hold"), "input"),
    (policy("hold", min_idle=3, hold_s=90), "input"),
    (policy("joint", window=2), "input"),
    (policy("joint", hold_s=30), "input"),
    (policy("joint", hold_s=45), "input"),
    (policy("joint"), "input"),
    (policy("joint"), "timer"),
    (policy("joint", hold_s=90), "input"),
    (policy("joint", min_idle=3, hold_s=45), "input"),
    (policy("joint", min_idle=3, hold_s=60), "input"),
    (policy("joint", min_idle=3, hold_s=90), "input"),
]


def summarise(runs: list[Outcome]) -> dict[str, float]:
    hits = sum(r.hits for r in runs)
    targets = sum(r.targets for r in runs)
    return {
        "bits": fmean(r.bits_per_draw for r in runs),
        "single": fmean(r.single_share for r in runs),
        "of_bound": fmean(r.of_bound for r in runs),
        "min_of_bound": min(r.of_bound for r in runs),
        "jump": max(r.max_jump for r in runs),
        "success": hits / targets if targets else float("nan"),
        "targets": targets,
        "chance": 1 / runs[0].drivers,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--vehicles", type=int, default=400)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    t0 = time.monotonic()
    every: list[dict[str, object]] = []
    print(
        "| policy | check-in | bits/draw | one candidate | throughput / bound (worst) "
        "| largest queue jump | colluder success (targets) | x chance |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for pol, checkin in ROWS:
        runs = [
            run(pol, checkin=checkin, vehicles=a.vehicles, seed=s) for s in range(1, a.seeds + 1)
        ]
        every += [r.to_json() for r in runs]
        f = summarise(runs)
        mark = " (default)" if pol == policy(DEFAULT_POLICY) else ""
        print(
            f"| {pol.label()}{mark} | {checkin} | {f['bits']:.2f} | {100 * f['single']:.1f} % "
            f"| {f['of_bound']:.3f} ({f['min_of_bound']:.3f}) | {f['jump']:.0f} "
            f"| {100 * f['success']:.1f} % ({f['targets']:.0f}) "
            f"| {f['success'] / f['chance']:.2f} |"
        )
    print(
        f"{len(ROWS)} policies x {a.seeds} seeds x {a.vehicles} vehicles, "
        f"{time.monotonic() - t0:.0f} s real"
    )
    if a.json:
        a.json.write_text(json.dumps(every, indent=1))


if __name__ == "__main__":
    main()
