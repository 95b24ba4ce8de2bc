"""The demo's assignment options: policy, check-in, a colluding driver, and the figures.

`--assignment POLICY` sets every demo line's policy (linectl.scheduler.assign),
`--checkin timer|input|console` how its drivers' return is known: with
`input` each driver's card is a spare input of the line I/O (8*0+2, +3, ...
on the first station's block) that the simulated driver presses as he
arrives; with `console` the demo's own operator account presses for him
through the site's operations (journaled like a person's press).
`--colluder` makes one simulated driver of each line a colluder
(sim/checkins.py); he needs a check-in to time, so it needs `input` or
`console`. None of these options names a driver.

The summary gets, per line, what the draws offered (draws, bits per draw,
single-candidate share, from the draw record as `linectl audit fairness`
computes them) and the colluder's score against chance.
"""

from __future__ import annotations

from typing import Any, TextIO

from linectl.audit import Choice
from linectl.cli import CliError
from linectl.config import SiteConfig
from linectl.ops.actor import Actor
from linectl.ops.operations import Operations
from linectl.site import Site
from sim.checkins import SimCheckins
from sim.site import SimSite


def check(args: Any) -> None:
    if getattr(args, "colluder", False) and getattr(args, "checkin", "timer") == "timer":
        raise CliError(
            "--colluder needs --checkin input or console: with the timer his only lever is "
            "his driving pace, which benchmarks/assignment.py models",
            2,
        )


def configure(cfg: SiteConfig, args: Any) -> SiteConfig:
    """The demo config with the options' policy and check-in on every line."""
    policy = getattr(args, "assignment", None)
    mode = getattr(args, "checkin", "timer")
    lines = []
    for ln in cfg.lines:
        assignment = ln.assignment
        if policy is not None:
            assignment = assignment.model_copy(update={"policy": policy})
        inputs = {d.id: 2 + i for i, d in enumerate(ln.proxy_drivers)} if mode == "input" else {}
        checkin = ln.checkin.model_copy(update={"mode": mode, "inputs": inputs})
        lines.append(ln.model_copy(update={"assignment": assignment, "checkin": checkin}))
    return cfg.model_copy(update={"lines": lines})


def attach(
    site: Site, sim: SimSite, ops: Operations, actor: Actor, args: Any
) -> SimCheckins | None:
    """Simulated drivers who check in, on lines that learn it from them."""
    mode = getattr(args, "checkin", "timer")
    if mode == "timer":
        return None

    async def check_in(line_id: str, driver: str) -> None:
        if mode == "console":
            await ops.check_in(actor, driver)
            return
        line = site.line(line_id)
        address = line.cfg.checkin.inputs[driver]
        await sim.emulators[line.cfg.io.id].press(address)

    return SimCheckins(
        site.clock,
        site.lines,
        check_in,
        colluder=getattr(args, "colluder", False),
        seed=getattr(args, "seed", None) or 0,
    )


async def figures(site: Site, checkins: SimCheckins | None) -> dict[str, Any]:
    """Per line: the draws' choice, and the colluder's score when there is one."""
    draws = await site.store.draws()
    colluders = {c["line"]: c for c in (checkins.summary() if checkins else [])}
    out: dict[str, Any] = {}
    for ln in site.lines:
        mine = [d for d in draws if d.line == ln.id]
        out[ln.id] = {
            "policy": ln.pool.policy.label(),
            "checkin": ln.pool.checkin,
            **Choice.of(mine).to_json(),
            "colluder": colluders.get(ln.id),
        }
    return out


def print_figures(doc: dict[str, Any], out: TextIO) -> None:
    for line, f in (doc.get("assignment") or {}).items():
        if not f["draws"]:
            continue
        print(
            f"  draws on {line} ({f['policy']}, check-in {f['checkin']}): {f['draws']} draws, "
            f"{f['bits_per_draw']:.2f} bits per draw, "
            f"{100 * f['single_candidate_share']:.1f} % with a single candidate",
            file=out,
        )
        c = f.get("colluder")
        if c and c["targets"]:
            print(
                f"  colluding driver: {c['hits']} of {c['targets']} targets "
                f"({100 * c['success']:.1f} %; chance {100 * c['chance']:.0f} %, "
                f"{c['of_chance']:.2f}x)",
                file=out,
            )
