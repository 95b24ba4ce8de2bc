"""`linectl demo`: the whole site against the simulator, in one process.

The simulator's instruments listen on free local ports and the daemon talks
to them over real sockets, exactly as on a station PC; they share one clock,
so `--time-scale 20` runs twenty simulated seconds per second. Vehicles come
from the simulator's population (faults included) and are registered through
the same door as the registry's. The demo ends after `--vehicles N`
inspections with a table of every inspection (plate, proxy driver, each
item's verdict) next to what the simulated vehicle was built to show, the
count of protocol violations the simulator's referee saw (sim/referee.py:
anything a real instrument would not have tolerated; it should be 0), and
optionally the same as JSON.

With `--retest-rate R` a share R of the vehicles that fail (or end
incomplete) come back after a simulated repair for their retest
(linectl.demo_retests), and the summary adds the first-time and
after-retest pass rates.

The demo serves the console and API like the daemon (`--http`, default
127.0.0.1:8080, or any free port when that one is taken) and prints its URL
and a one-time operator login: an account `operator` in the demo's database
with a fresh random password. With `--vehicles 0` it registers nothing
itself: vehicles come from the console, the API or MQTT, until Ctrl-C. The
simulated world learns every accepted registration's vehicle, whichever
door it came through, and drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from linectl import demo_assignment
from linectl.cli import DEFAULT_DEMO_HTTP, CliError
from linectl.clock import Clock
from linectl.config import HttpConfig, MqttConfig, SiteConfig, parse_listen, parse_site_config
from linectl.daemon import http_server
from linectl.demo_retests import Returns, pass_rates
from linectl.http.server import HttpServer
from linectl.items import sort_items
from linectl.ops.accounts import AccountAdmin, new_password
from linectl.ops.actor import Actor
from linectl.ops.operations import Operations
from linectl.registration import read_request_id
from linectl.site import Site, open_store
from linectl.store.repo import AsyncStore, Store
from linectl.upstream import Upstream
from linectl.upstream.connection import parse_broker_url
from sim.site import SimSite
from sim.vehicles import Population, SimVehicle

log = logging.getLogger(__name__)

DRIVER_NAMES = (
    "Wang Wei",
    "Li Na",
    "Zhang Min",
    "Liu Yang",
    "Chen Jie",
    "Yang Fang",
    "Zhao Lei",
    "Huang Li",
)
STATION_KINDS = ("brake", "headlamp", "emission")
# Beam position is judged in the demo, so the simulator's misaimed lamps show up.
DEMO_BEAM_POSITION = "judge"
DEVICE_MODELS = {
    "brake": [("rbt", "rbt-modbus")],
    "headlamp": [("hlt", "hlt-ascii")],
    # One emission station holds both instruments: petrol and diesel share the line.
    "emission": [("gas", "nha503"), ("smoke", "nht6")],
}


def demo_config(
    site_id: str, n_lines: int, db_url: str, tty_dir: Path, kinds: tuple[str, ...] = STATION_KINDS
) -> SiteConfig:
    """A site of `n_lines` identical lines: Modbus devices on free local TCP ports,
    serial instruments on pseudo-terminals linked in `tty_dir`."""
    lines = []
    for n in range(1, n_lines + 1):
        lid = f"L{n}"
        stations = []
        for kind in kinds:
            devices = [
                {
                    "id": f"{prefix}-{lid}",
                    "model": model,
                    "transport": _transport(model, tty_dir / f"{lid}-{prefix}"),
                }
                for prefix, model in DEVICE_MODELS[kind]
            ]
            stations.append({"id": kind, "kind": kind, "devices": devices})
        lines.append(
            {
                "id": lid,
                "io": {
                    "id": f"io-{lid}",
                    "model": "lineio-modbus",
                    "transport": _transport("lineio-modbus", tty_dir),
                },
                "stations": stations,
                "proxy_drivers": [
                    {
                        "id": f"{lid}D{i + 1}",
                        "name": DRIVER_NAMES[(i + 4 * (n - 1)) % len(DRIVER_NAMES)],
                    }
                    for i in range(4)
                ],
            }
        )
    return parse_site_config(
        {
            "site_id": site_id,
            "lines": lines,
            "database": {"url": db_url},
            "limits": {"beam_position": DEMO_BEAM_POSITION},
        },
        "demo config",
    )


def _transport(model: str, tty: Path) -> dict[str, Any]:
    if model.endswith("-modbus"):
        return {"kind": "tcp", "host": "127.0.0.1", "port": 0}
    return {"kind": "serial", "device": str(tty)}


def default_db_url() -> str:
    var = Path("var")
    var.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"sqlite:///{var / f'demo-{stamp}.db'}"


class LagMeter:
    """How far the event loop fell behind, in simulated seconds.

    At a high time scale on a busy machine, a few real milliseconds of lag are
    whole simulated seconds: drivers react late, prompts land late. The demo
    says so rather than let such runs pass for the stations' doing."""

    PERIOD_S = 0.05
    WARN_CLOCK_S = 1.0

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.worst_clock_s = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.PERIOD_S)
            lag = loop.time() - t - self.PERIOD_S
            self.worst_clock_s = max(self.worst_clock_s, lag * self.clock.time_scale)

    @classmethod
    def warning_for(cls, doc: dict[str, Any]) -> str | None:
        worst = doc.get("loop_lag_max_clock_s", 0.0)
        if worst < cls.WARN_CLOCK_S:
            return None
        return (
            f"warning: the event loop fell behind by up to {worst:.1f} simulated "
            f"seconds at time scale {doc['time_scale']:g}; timing-sensitive items may be "
            "not judged (guide_late) because of this machine, not the stations; "
            "a lower --time-scale avoids it"
        )


@dataclass
class Tally:
    expected: int | None
    registered: dict[str, SimVehicle] = field(default_factory=dict)  # inspection id -> vehicle
    finished: list[str] = field(default_factory=list)  # first visits, in the order they ended
    verdicts: dict[str, str] = field(default_factory=dict)  # the latest, retests included
    firsts_done: asyncio.Event = field(default_factory=asyncio.Event)  # `expected` first visits
    done: asyncio.Event = field(default_factory=asyncio.Event)


def registration_for(sv: SimVehicle, n: int, items: list[str] | None) -> dict[str, Any]:
    req: dict[str, Any] = {
        "request_id": f"demo-{n:05d}",
        "inspection_type": "periodic",
        "vehicle": sv.vehicle.to_dict(),
    }
    if items is not None:
        req["items"] = items
    return req


def _items_for(sv: SimVehicle, kinds: tuple[str, ...]) -> list[str] | None:
    """The vehicle's items restricted to the station kinds the demo line has."""
    from linectl.items import STATION_OF_ITEM, derive_items

    items = [c for c in derive_items(sv.vehicle) if STATION_OF_ITEM[c] in kinds]
    return items if len(items) != len(derive_items(sv.vehicle)) else None


DEMO_ACTOR = Actor.system("demo")
DEMO_OPERATOR = "operator"


async def feed(
    ops: Operations, sim: SimSite, population: Population, tally: Tally, kinds: tuple[str, ...]
) -> None:
    """Register the population's vehicles: all at once when a count is given, else a
    steady trickle that keeps every line's queue from running dry."""
    site = ops.site
    n = 0
    while tally.expected is None or n < tally.expected:
        if tally.expected is None:
            backlog = sum(ln.queue_length() for ln in site.lines)
            if backlog >= 2 * len(site.lines):
                await site.clock.sleep(5.0)
                continue
        sv = population.next()
        n += 1
        sim.world.add(sv)
        reply = await ops.register(DEMO_ACTOR, registration_for(sv, n, _items_for(sv, kinds)))
        if not reply.get("accepted"):
            raise CliError(
                f"the demo's own registration {read_request_id(reply)} was refused: {reply.get('error')}"
            )
        tally.registered[reply["inspection_id"]] = sv


async def progress(site: Site, tally: Tally, out: TextIO, returns: Returns | None = None) -> None:
    """One line per finished inspection, as the site reports them; a failed vehicle
    may be sent back for a retest (`returns`), whose end has a line of its own."""
    with site.events.subscribe({"completed", "aborted"}) as sub:
        async for ev in sub:
            iid = ev.inspection_id or ""
            verdict = ev.data.get("verdict", "aborted")
            tally.verdicts[iid] = verdict
            t = site.clock.now()
            clock = f"[{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}]"
            if returns is not None and returns.is_retest(iid):
                returns.finished(iid)
                print(
                    f"{clock} retest  {ev.line}  {iid}  {ev.data.get('plate', '')}  "
                    f"{verdict:<10} revision {ev.data.get('revision', '-')}, "
                    f"{returns.describe(iid)}",
                    file=out,
                    flush=True,
                )
                continue
            tally.finished.append(iid)
            sv = tally.registered.get(iid)
            faults = ", ".join(sv.fault_labels()) if sv else ""
            of = f"/{tally.expected}" if tally.expected else ""
            back = returns is not None and returns.consider(iid, verdict, sv)
            print(
                f"{clock} {len(tally.finished):>4}{of}  {ev.line}  {iid}  "
                f"{ev.data.get('plate', '')}  {verdict:<10} {faults}"
                + ("  (sent back for repair)" if back else ""),
                file=out,
                flush=True,
            )
            if tally.expected is not None and len(tally.finished) >= tally.expected:
                tally.firsts_done.set()


async def until_done(tally: Tally, returns: Returns | None) -> None:
    """Done once every first visit has ended and every vehicle sent back has had its
    retest (or was refused one)."""
    await tally.firsts_done.wait()
    if returns is not None:
        await returns.settled.wait()
    tally.done.set()


async def summary(
    site: Site, tally: Tally, sim: SimSite | None = None, returns: Returns | None = None
) -> dict[str, Any]:
    inspections = []
    for iid in tally.finished:
        rec = await site.store.inspection(iid)
        published = await site.store.published_results(iid)
        first = published[0].document() if published else {}
        sv = tally.registered.get(iid)  # after a retest: the vehicle that came back
        back = returns.sent.get(iid) if returns is not None else None
        built = back.built if back is not None else sv
        latest = rec.item_verdicts()
        expected = (
            sv.expected_items(str(rec.inspection_type), site.cfg.limits.beam_position) if sv else {}
        )
        measured = set(latest)
        matches = all(latest.get(c) == v for c, v in expected.items() if c in measured) and all(
            v == "pass" for c, v in latest.items() if c not in expected
        )
        inspections.append(
            {
                "inspection_id": iid,
                "line": rec.line,
                "plate": rec.plate,
                "proxy_driver": rec.proxy_driver_id,
                "verdict": rec.verdict or "aborted",
                "first_verdict": first.get("verdict") or "aborted",
                "revisions": len(published),
                "items": {c: latest[c] for c in sort_items(latest)},
                "expected_faults": built.fault_labels() if built else [],
                "repaired_faults": (
                    [f.label() for f in back.repair.repaired] if back and back.repair else []
                ),
                "expected_items": expected,
                "matches_expectation": matches,
            }
        )
    doc: dict[str, Any] = {
        "site": site.id,
        "time_scale": site.clock.time_scale,
        "simulated_s": round(site.clock.now(), 1),
        "inspections": inspections,
        "pass_rates": pass_rates(inspections),
        "lines": [ln.report() for ln in site.lines],
        "protocol_violations": sim.referee.count if sim is not None else None,
        "protocol_violations_by_kind": sim.referee.by_kind() if sim is not None else {},
    }
    if returns is not None:
        doc["retests"] = returns.summary()
    return doc


def print_figure(doc: dict[str, Any], out: TextIO) -> None:
    """Per line, in simulated time: throughput against its bound, waits, utilisation."""
    for ln in doc["lines"]:
        st = ln["steady_state"]
        vph, bound = ln["vehicles_per_hour"], ln["bound_per_hour"]
        print(f"\nline {ln['line']}: {ln['vehicles']} vehicles", file=out)
        if st and vph and bound:
            print(
                f"  throughput {vph:.1f} vehicles/h = {100 * ln['of_bound']:.1f} % of the bound "
                f"{bound:.1f}/h (limited by {ln['limited_by']}; stations allow "
                f"{ln['station_bound_per_hour']:.1f}/h, proxy drivers "
                f"{ln['driver_bound_per_hour']:.1f}/h)",
                file=out,
            )
            print(
                f"  steady state: {st['vehicles']} vehicles from {st['from_s'] / 60:.1f} to "
                f"{st['to_s'] / 60:.1f} simulated min (warm-up: the first "
                f"{st['warmup_vehicles']} excluded; drain after the queue emptied excluded)",
                file=out,
            )
        else:
            print("  too few vehicles for a steady-state throughput", file=out)
        wait = ln["mean_queue_wait_s"]
        if wait is not None:
            print(f"  mean queue wait {wait / 60:.1f} min", file=out)
        for s in ln["stations"]:
            svc = s["mean_service_s"]
            print(
                f"  station {s['id']:<9} utilisation {100 * s['utilisation']:5.1f} %   "
                f"blocked {100 * s['blocked_share']:5.1f} %   mean service "
                + (f"{svc:.0f} s" if svc is not None else "-"),
                file=out,
            )
        drawn = (doc.get("assignment") or {}).get(ln["line"])
        if drawn:
            demo_assignment.print_figures({"assignment": {ln["line"]: drawn}}, out)
        pd = ln["proxy_drivers"]
        if pd["mean_utilisation"] is not None:
            per = ", ".join(f"{k} {100 * v:.0f} %" for k, v in pd["utilisation"].items())
            print(
                f"  proxy drivers ({pd['on_duty']} on duty, walk back {pd['walk_back_s']:.0f} s): "
                f"utilisation {100 * pd['mean_utilisation']:.0f} % ({per})",
                file=out,
            )


def print_table(doc: dict[str, Any], out: TextIO) -> None:
    rows = doc["inspections"]
    if not rows:
        print("no inspections finished", file=out)
        return
    codes = sort_items({c for r in rows for c in r["items"]})
    short = {"pass": "ok", "fail": "FAIL", "not_judged": "n/j"}
    head = ["inspection", "plate", "driver", *codes, "verdict", "simulated fault", ""]
    table = [head]
    for r in rows:
        verdict = r["verdict"]
        if r.get("revisions", 1) > 1:  # retested: the first result, then the latest
            verdict = f"{r['first_verdict']} > {verdict}"
        faults = ", ".join(
            f + (" (repaired)" if f in r.get("repaired_faults", []) else "")
            for f in r["expected_faults"]
        )
        table.append(
            [
                r["inspection_id"],
                r["plate"],
                r["proxy_driver"] or "-",
                *[short.get(r["items"].get(c, ""), "-") for c in codes],
                verdict,
                faults or "healthy",
                "" if r["matches_expectation"] else "<- differs",
            ]
        )
    widths = [max(_width(row[i]) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        print("  ".join(_pad(cell, widths[j]) for j, cell in enumerate(row)).rstrip(), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)
    ok = sum(r["matches_expectation"] for r in rows)
    verdicts = {
        v: sum(r["verdict"] == v for r in rows) for v in ("pass", "fail", "incomplete", "aborted")
    }
    print(
        f"\n{len(rows)} inspections: "
        + ", ".join(f"{n} {v}" for v, n in verdicts.items() if n)
        + f"; {ok}/{len(rows)} as the simulated vehicles were built"
        + f"; {doc['simulated_s'] / 60:.1f} simulated minutes",
        file=out,
    )
    rates = doc.get("pass_rates")
    if rates and rates["vehicles"]:
        n = rates["vehicles"]
        line = (
            f"first-time pass rate {rates['first_time_pass']}/{n} = "
            f"{100 * rates['first_time_pass_rate']:.0f} %"
        )
        if "retests" in doc:
            line += (
                f"; after retest {rates['after_retest_pass']}/{n} = "
                f"{100 * rates['after_retest_pass_rate']:.0f} % ({rates['retested']} retested, "
                f"{rates['passed_on_retest']} passed on retest; "
                f"{doc['retests']['sent_back']} sent back)"
            )
        print(line, file=out)
    n = doc.get("protocol_violations")
    if n is not None:
        kinds = ", ".join(f"{k} {c}" for k, c in sorted(doc["protocol_violations_by_kind"].items()))
        print(
            f"protocol violations seen by the simulated instruments: {n}"
            + (f" ({kinds})" if kinds else ""),
            file=out,
        )


def _width(s: str) -> int:
    # CJK characters take two terminal columns.
    return sum(2 if ord(c) > 0x2E80 else 1 for c in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))


# With --mqtt, how many of the population's vehicles the simulated world knows:
# `linectl registry-sim` (same seed) registers these first, with their faults.
KNOWN_PLATES = 500
DRAIN_S = 10.0  # real seconds the demo waits, at its end, for the broker to take the last results


def attach_upstream(ops: Operations, sim: SimSite, population: Population, url: str) -> Upstream:
    """--mqtt: the site takes its registrations from the broker at `url`.

    The world knows the population's first vehicles, so the plates the
    registry-sim registers show their designed faults; any other plate drives a
    healthy vehicle built to its registration (the world learns every accepted one)."""
    for _ in range(KNOWN_PLATES):
        sim.world.add(population.next())
    return Upstream(ops, MqttConfig(url=url))


async def track(site: Site, sim: SimSite, tally: Tally, ready: asyncio.Event) -> None:
    """Which simulated vehicle each queued inspection is, for the summary (the
    vehicles registered through MQTT, the console or the API)."""
    with site.events.subscribe({"queued"}) as sub:
        ready.set()
        async for ev in sub:
            if ev.inspection_id and ev.data.get("plate"):
                tally.registered.setdefault(ev.inspection_id, sim.world.vehicle(ev.data["plate"]))


def demo_login(store: Store) -> str:
    """A fresh random password for the demo's operator account (made if need be)."""
    admin = AccountAdmin(store, DEMO_ACTOR)
    password = new_password()
    if store.account(DEMO_OPERATOR) is None:
        admin.add(DEMO_OPERATOR, "operator", password)
    else:
        admin.set_password(DEMO_OPERATOR, password)
    return password


def demo_http(
    ops: Operations, store: AsyncStore, listen: str | None, upstream: Upstream | None = None
) -> tuple[HttpServer, str]:
    """The console of the demo, bound: at `listen`, or, when the default port is
    taken, at any free port of the same host (with a note why)."""
    assert listen is not None
    server = http_server(ops, store, HttpConfig(), listen, upstream)
    note = ""
    try:
        server.bind()
    except OSError as e:
        if listen != DEFAULT_DEMO_HTTP:
            raise CliError(f"--http {listen}: cannot listen there: {e.strerror}", 2) from None
        host, _ = parse_listen(listen)
        server = http_server(ops, store, HttpConfig(), f"{host}:0", upstream)
        server.bind()
        note = f" ({listen} is taken)"
    return server, note


async def run_demo(args: Any, out: TextIO = sys.stdout) -> dict[str, Any]:
    clock = Clock(args.time_scale)
    db_url = args.db or default_db_url()
    kinds = tuple(getattr(args, "stations", None) or STATION_KINDS)
    listen = getattr(args, "http", None)
    listen = None if listen in (None, "off") else listen
    tty_dir = Path(tempfile.mkdtemp(prefix="linectl-demo-"))
    cfg = demo_assignment.configure(
        demo_config(args.site, args.lines, db_url, tty_dir, kinds), args
    )
    sim = SimSite(cfg, clock, seed=args.seed or 0)
    await sim.start()
    store = await open_store(db_url)
    site = Site(sim.live_config(), clock, store)
    ops = Operations(site)
    # The simulated world drives whatever vehicle is registered, by whichever door.
    ops.on_accept.append(lambda reg: sim.world.learn(reg.vehicle))
    checkins = demo_assignment.attach(site, sim, ops, DEMO_ACTOR, args)
    tally = Tally(args.vehicles or None)
    population = Population(seed=args.seed if args.seed is not None else 1)
    returns: Returns | None = None
    if getattr(args, "retest_rate", 0.0):
        returns = Returns(
            ops,
            sim,
            DEMO_ACTOR,
            rate=args.retest_rate,
            repair_rate=args.repair_rate,
            seed=args.seed or 0,
            on_back=tally.registered.__setitem__,
        )
    upstream = attach_upstream(ops, sim, population, args.mqtt) if args.mqtt else None
    http: HttpServer | None = None
    print(
        f"linectl demo: site {args.site}, {args.lines} line(s) of {', '.join(kinds)}, "
        f"time scale {args.time_scale:g}, database {db_url}",
        file=out,
        flush=True,
    )
    if listen is not None:
        http, note = demo_http(ops, store, listen, upstream)
        password = await store.run(demo_login, store.store)
        print(
            f"console: {http.url}{note}  sign in as {DEMO_OPERATOR} / {password} "
            "(a new password every run)",
            file=out,
            flush=True,
        )
    if upstream is not None:
        print(
            f"taking registrations on {upstream.topics.registrations} at {args.mqtt}",
            file=out,
            flush=True,
        )
    if args.vehicles == 0:
        print(
            "--vehicles 0: register vehicles in the console or by MQTT; Ctrl-C ends",
            file=out,
            flush=True,
        )
    lag = LagMeter(clock)
    loop = asyncio.get_running_loop()
    # Ctrl-C ends the demo like reaching --vehicles: the table of what finished.
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, tally.done.set)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(sim.run(), name="sim"),
                tg.create_task(lag.run(), name="lag"),
                tg.create_task(site.run(), name="site"),
                tg.create_task(progress(site, tally, out, returns), name="progress"),
                tg.create_task(until_done(tally, returns), name="until-done"),
            ]
            if checkins is not None:
                tasks.append(tg.create_task(checkins.watch(site.events), name="checkins"))
            tracking = asyncio.Event()
            tasks.append(tg.create_task(track(site, sim, tally, tracking), name="track"))
            await tracking.wait()
            if http is not None:
                tasks.append(tg.create_task(http.run(), name="http"))
            if upstream is not None:
                tasks.append(tg.create_task(upstream.run(), name="upstream"))
            await site.ready.wait()
            if upstream is None and args.vehicles != 0:
                tasks.append(tg.create_task(feed(ops, sim, population, tally, kinds), name="feed"))
            await tally.done.wait()
            if upstream is not None:
                # The last results still on their way to the registry get there first.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(upstream.publisher.drained(), DRAIN_S)
            # The daemon stops before its instruments do, as on a real site: a
            # procedure mid-request never finds its device gone while shutting down.
            for t in tasks[1:]:
                t.cancel()
            await asyncio.wait(tasks[1:])
            tasks[0].cancel()
    except asyncio.CancelledError:
        pass
    finally:
        if returns is not None:
            await returns.aclose()
        if checkins is not None:
            await checkins.aclose()
        doc = await summary(site, tally, sim, returns)
        doc["assignment"] = await demo_assignment.figures(site, checkins)
        doc["loop_lag_max_clock_s"] = round(lag.worst_clock_s, 2)
        await store.aclose()
        await sim.aclose()
        shutil.rmtree(tty_dir, ignore_errors=True)
    return doc


def cli(args: Any) -> int:
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    demo_assignment.check(args)
    if args.mqtt:
        parse_broker_url(args.mqtt, "--mqtt")  # a bad URL: one line, before anything starts
    if args.http not in (None, "off"):
        try:
            parse_listen(args.http)
        except ValueError as e:
            raise CliError(f"--http: {e}", 2) from None
    try:
        doc = asyncio.run(run_demo(args))
    except KeyboardInterrupt:
        return 130
    print(file=sys.stdout)
    print_table(doc, sys.stdout)
    print_figure(doc, sys.stdout)
    if warning := LagMeter.warning_for(doc):
        print(f"\n{warning}")
    if args.summary_json:
        Path(args.summary_json).write_text(
            json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"summary written to {args.summary_json}")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0
