"""The chaos day: a whole simulated site run through device faults and daemon kills.

`scripts/chaos --seed S --vehicles N --kills K --fault-rate F --json FILE`
(or `python -m linectl.chaos`) sets up, in a fresh folder, a private
mosquitto and a site config of `--lines` full lines (brake, headlamp,
emission), then runs as separate processes, as on a station PC:

- `linectl sim --seed S --fault-rate F`: the instruments, the vehicles of
  population S, and device faults drawn at random (sim/faults.py);
- `linectl run`: the daemon, on SQLite; killed with SIGKILL K times, each a
  random moment after a vehicle entered a station, and started again;
- `linectl registry-sim --seed S --vehicles N`: the registry, registering
  the first N vehicles of population S and collecting their results.

This module is the rest of the registry: it listens to every result and
asks a retest (mqtt.md) of each inspection that came out incomplete (a kill
aborted it, or a device fault left an item not judged), up to
`MAX_RETESTS` times. When the registry-sim has every result and every
retest has its own, the daemon is stopped, and the day is judged from what
the registry received and what the database holds:

- `faults`: faults the simulator injected; `kills`: daemon kills;
- `inspections`: inspections in the database; `retests`: retests accepted;
- `not_judged`: not-judged attempts by reason (the reason's key, before ":");
- `delivered`: distinct results (inspection, revision) the registry received;
- `lost`: results committed or promised (an accepted registration or retest)
  that never reached the registry (must be 0);
- `duplicates`: a vehicle inspected twice for one registration, an attempt
  recorded twice, or two different results under one (inspection, revision)
  (must be 0);
- `wrong_verdicts`: judged attempts (pass or fail) that differ from what the
  simulated vehicle was built with (sim.vehicles `expected_items`; must be 0);
- `audit_ok`: `linectl audit verify` passes (draw chain and journal).

Exit 0 when lost, duplicates and wrong verdicts are 0, the audit passes and
the daemon stopped on SIGTERM at the end (faults may still be running then).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiomqtt

from linectl.upstream.topics import Topics
from sim.vehicles import Population, SimVehicle

SITE = "chaos"
PREFIX = "linectl"
MAX_RETESTS = 3  # per inspection: a vehicle that keeps meeting faults goes home incomplete
START_TIMEOUT_S = 60.0  # real seconds for a process to come up
STOP_TIMEOUT_S = 30.0  # real seconds the daemon gets to stop on SIGTERM
FAULT_LINE = re.compile(r"sim fault: (\S+) on (\S+) at .* starts")
JSON_KEYS = (
    "faults",
    "kills",
    "inspections",
    "not_judged",
    "retests",
    "delivered",
    "lost",
    "duplicates",
    "wrong_verdicts",
    "audit_ok",
)


@dataclass
class Options:
    seed: int = 7
    vehicles: int = 60
    kills: int = 5
    fault_rate: float = 0.05
    json_path: str | None = None
    lines: int = 2
    time_scale: float = 20.0
    timeout_s: float = 1800.0
    workdir: str | None = None
    keep: bool = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site_toml(work: Path, n_lines: int, broker_port: int) -> str:
    """A site of `n_lines` lines, every device where the simulator will listen."""
    out = [
        f'site_id = "{SITE}"',
        "",
        "[database]",
        f'url = "sqlite:///{work / "site.db"}"',
        "",
        "[mqtt]",
        f'url = "mqtt://127.0.0.1:{broker_port}"',
        "",
        "[http]",
        'listen = "127.0.0.1:0"',
    ]
    tty = work / "tty"
    for n in range(1, n_lines + 1):
        lid = f"L{n}"
        out += [
            "",
            "[[lines]]",
            f'id = "{lid}"',
            "walk_back_s = 40",
            f'proxy_drivers = ["{lid}D1", "{lid}D2", "{lid}D3", "{lid}D4"]',
            f'io = {{ id = "io-{lid}", model = "lineio-modbus", '
            f'transport = {{ kind = "tcp", port = {free_port()} }} }}',
            "",
            "[[lines.stations]]",
            'id = "brake"',
            'kind = "brake"',
            f'devices = [{{ id = "rbt-{lid}", model = "rbt-modbus", '
            f'transport = {{ kind = "tcp", port = {free_port()} }} }}]',
            "",
            "[[lines.stations]]",
            'id = "headlamp"',
            'kind = "headlamp"',
            f'devices = [{{ id = "hlt-{lid}", model = "hlt-ascii", '
            f'transport = {{ kind = "serial", device = "{tty / (lid + "-hlt")}" }} }}]',
            "",
            "[[lines.stations]]",
            'id = "emission"',
            'kind = "emission"',
            "devices = [",
            f'  {{ id = "gas-{lid}", model = "nha503", '
            f'transport = {{ kind = "serial", device = "{tty / (lid + "-gas")}" }} }},',
            f'  {{ id = "smoke-{lid}", model = "nht6", '
            f'transport = {{ kind = "serial", device = "{tty / (lid + "-smoke")}" }} }},',
            "]",
        ]
    return "\n".join(out) + "\n"


class Processes:
    """The day's child processes, each with its log file in the work folder."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, log_name: str, *argv: str) -> asyncio.subprocess.Process:
        with (self.work / log_name).open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=out,
                stderr=out,
                stdin=asyncio.subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.procs.append(proc)
        return proc

    def linectl(self, log_name: str, *argv: str) -> Any:
        return self.spawn(log_name, sys.executable, "-m", "linectl", *argv)

    def log(self, name: str) -> str:
        try:
            return (self.work / name).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    async def wait_log(self, name: str, text: str, proc: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while text not in self.log(name):
            if proc.returncode is not None:
                raise ChaosError(f"{name}: the process ended at start:\n{self.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise ChaosError(f"{name}: not up after {START_TIMEOUT_S:g} s")
            await asyncio.sleep(0.1)

    async def stop(self, proc: asyncio.subprocess.Process, within_s: float) -> bool:
        """SIGTERM and wait; SIGKILL when it does not end in time. True if it ended."""
        if proc.returncode is not None:
            return True
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), within_s)
            return True
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return False

    async def stop_all(self) -> None:
        for p in reversed(self.procs):
            await self.stop(p, 10.0)


class ChaosError(RuntimeError):
    pass


@dataclass
class Registry:
    """What this side of the registry heard over MQTT, and the retests it asked."""

    topics: Topics
    status: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # line -> docs
    station_starts: int = 0
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)  # request_id -> reply
    results: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    received: Counter[tuple[str, int]] = field(default_factory=Counter)
    differing: int = 0  # a second result under one (inspection, revision) that differs
    retests_asked: dict[str, str] = field(default_factory=dict)  # request_id -> inspection
    retest_count: Counter[str] = field(default_factory=Counter)  # inspection -> asked
    to_send: list[tuple[str, bytes]] = field(default_factory=list)

    def online_since(self, marks: dict[str, int]) -> bool:
        """Every line published an online status after `marks` (line -> index)."""
        return bool(marks) and all(
            any(d.get("online") for d in self.status.get(ln, [])[i:]) for ln, i in marks.items()
        )

    def take(self, topic: str, doc: dict[str, Any]) -> None:
        levels = topic.split("/")
        if topic.endswith("/status"):
            self.status.setdefault(levels[-2], []).append(doc)
        elif topic.endswith("/events"):
            if doc.get("type") == "station_started":
                self.station_starts += 1
        elif topic.endswith("/reply"):
            self.replies[levels[-2]] = doc
        elif "/results/" in topic:
            key = (str(doc.get("inspection_id")), int(doc.get("revision") or 0))
            self.received[key] += 1
            first = self.results.get(key)
            if first is None:
                self.results[key] = doc
                self._maybe_retest(doc)
            elif _essence(first) != _essence(doc):
                self.differing += 1

    def _maybe_retest(self, doc: dict[str, Any]) -> None:
        iid, rev = str(doc["inspection_id"]), int(doc.get("revision") or 0)
        latest = max((r for i, r in self.results if i == iid), default=0)
        if doc.get("verdict") != "incomplete" or rev < latest:
            return
        if self.retest_count[iid] >= MAX_RETESTS:
            return
        self.retest_count[iid] += 1
        rid = f"chaos-rt-{iid}-{rev}"
        self.retests_asked[rid] = iid
        vin = (doc.get("vehicle") or {}).get("vin")
        body = {"request_id": rid, "retest_of": iid, "vehicle": {"vin": vin}}
        self.to_send.append((rid, json.dumps(body).encode()))

    def awaited(self) -> set[tuple[str, int]]:
        """Results owed: revision 1 of every accepted registration, the revision of
        every accepted retest."""
        out = set()
        for r in self.replies.values():
            if r.get("accepted") and isinstance(r.get("inspection_id"), str):
                out.add((r["inspection_id"], int(r.get("revision") or 1)))
        return out

    def settled(self) -> bool:
        asked = all(rid in self.replies for rid in self.retests_asked)
        return asked and not self.to_send and self.awaited() <= set(self.results)


def _essence(doc: dict[str, Any]) -> Any:
    items = sorted(
        (i.get("code"), i.get("verdict"), i.get("attempt")) for i in doc.get("items") or []
    )
    return (doc.get("verdict"), items)


async def listen(reg: Registry, port: int, ready: asyncio.Event) -> None:
    """The registry's listener (and retest sender), reconnecting if need be."""
    while True:
        try:
            async with aiomqtt.Client(
                "127.0.0.1", port, identifier=f"chaos-registry-{os.getpid()}"
            ) as client:
                await client.subscribe(f"{PREFIX}/{SITE}/#", qos=1)
                ready.set()

                async def sender() -> None:
                    while True:
                        while reg.to_send:
                            _, payload = reg.to_send[0]
                            await client.publish(reg.topics.registrations, payload, qos=1)
                            reg.to_send.pop(0)
                        await asyncio.sleep(0.1)

                send = asyncio.create_task(sender())
                try:
                    async for m in client.messages:
                        if not isinstance(m.payload, bytes):
                            continue
                        try:
                            doc = json.loads(m.payload)
                        except ValueError:
                            continue
                        if isinstance(doc, dict):
                            reg.take(str(m.topic), doc)
                finally:
                    send.cancel()
        except aiomqtt.MqttError:
            await asyncio.sleep(0.5)


class Day:
    def __init__(self, opts: Options, out: TextIO) -> None:
        self.opts = opts
        self.out = out
        self.t0 = time.monotonic()
        self.kills = 0
        self.daemon_stop_ok = True
        self.error: str | None = None

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", file=self.out, flush=True)

    async def run(self) -> dict[str, Any]:
        opts = self.opts
        work = Path(opts.workdir or tempfile.mkdtemp(prefix="linectl-chaos-"))
        os.makedirs(work, exist_ok=True)
        self.say(
            f"chaos day: seed {opts.seed}, {opts.vehicles} vehicles, {opts.kills} kills, "
            f"fault rate {opts.fault_rate:g}, {opts.lines} line(s), time scale "
            f"{opts.time_scale:g}; files in {work}"
        )
        procs = Processes(work)
        broker_port = free_port()
        config = work / "site.toml"
        config.write_text(site_toml(work, opts.lines, broker_port), encoding="utf-8")
        reg = Registry(Topics(PREFIX, SITE))
        listener: asyncio.Task[None] | None = None
        try:
            await self._broker(procs, work, broker_port)
            ready = asyncio.Event()
            listener = asyncio.create_task(listen(reg, broker_port, ready))
            await asyncio.wait_for(ready.wait(), START_TIMEOUT_S)
            scale = str(opts.time_scale)
            sim = await procs.linectl(
                "sim.log", "sim", "--config", str(config), "--time-scale", scale,
                "--seed", str(opts.seed), "--fault-rate", str(opts.fault_rate),
            )  # fmt: skip
            await procs.wait_log("sim.log", "simulating site", sim)
            self.say("simulator up")
            daemon = await self._start_daemon(procs, config, reg)
            registry = await procs.linectl(
                "registry-sim.log", "registry-sim", "--mqtt", f"mqtt://127.0.0.1:{broker_port}",
                "--site", SITE, "--vehicles", str(opts.vehicles), "--seed", str(opts.seed),
                "--timeout", str(opts.timeout_s),
            )  # fmt: skip
            daemon = await self._drive(procs, config, reg, daemon, registry)
            self.say("every result in; stopping the daemon")
            self.daemon_stop_ok = await procs.stop(daemon, STOP_TIMEOUT_S)
            if not self.daemon_stop_ok:
                self.say(f"the daemon did not stop within {STOP_TIMEOUT_S:g} s of SIGTERM")
            await procs.stop(sim, 15.0)
        except ChaosError as e:
            self.error = str(e)
            self.say(f"error: {e}")
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await procs.stop_all()
        doc = self.judge(work, config, reg, procs)
        if not opts.keep and self.error is None and self.ok(doc):
            shutil.rmtree(work, ignore_errors=True)
        return doc

    async def _broker(self, procs: Processes, work: Path, port: int) -> None:
        conf = work / "mosquitto.conf"
        lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        proc = await procs.spawn("mosquitto.log", binary, "-c", str(conf))
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if proc.returncode is not None or time.monotonic() > deadline:
                raise ChaosError(f"mosquitto did not start:\n{procs.log('mosquitto.log')}")
            await asyncio.sleep(0.05)

    async def _start_daemon(
        self, procs: Processes, config: Path, reg: Registry
    ) -> asyncio.subprocess.Process:
        lines = [f"L{n}" for n in range(1, self.opts.lines + 1)]
        marks = {ln: len(reg.status.get(ln, [])) for ln in lines}
        daemon = await procs.linectl(
            "run.log", "run", "--config", str(config), "--time-scale", str(self.opts.time_scale)
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not reg.online_since(marks):
            if daemon.returncode is not None:
                raise ChaosError(f"the daemon ended at start:\n{procs.log('run.log')[-3000:]}")
            if time.monotonic() > deadline:
                raise ChaosError(f"the daemon not online after {START_TIMEOUT_S:g} s")
            await asyncio.sleep(0.05)
        return daemon

    def _kill_points(self) -> list[int]:
        """After which station starts (counted over the day) each kill comes: within
        the first two thirds of the visits, so the day goes on after the last."""
        opts = self.opts
        visits = max(opts.vehicles * 3 * 2 // 3, opts.kills + 1)
        rng = random.Random(opts.seed)
        return sorted(rng.sample(range(1, visits), min(opts.kills, visits - 1)))

    async def _drive(
        self,
        procs: Processes,
        config: Path,
        reg: Registry,
        daemon: asyncio.subprocess.Process,
        registry: asyncio.subprocess.Process,
    ) -> asyncio.subprocess.Process:
        rng = random.Random(self.opts.seed + 1)
        points = self._kill_points()
        deadline = time.monotonic() + self.opts.timeout_s
        last_note = 0.0
        while True:
            now = time.monotonic()
            if points and reg.station_starts >= points[0]:
                points.pop(0)
                await asyncio.sleep(rng.uniform(0.05, 1.5))
                daemon.send_signal(signal.SIGKILL)
                await daemon.wait()
                self.kills += 1
                self.say(f"daemon killed ({self.kills}/{self.opts.kills}); starting it again")
                daemon = await self._start_daemon(procs, config, reg)
                self.say("daemon back online")
                continue
            if daemon.returncode is not None:
                raise ChaosError(f"the daemon ended by itself:\n{procs.log('run.log')[-3000:]}")
            if registry.returncode is not None and reg.settled() and not points:
                self.say(f"registry-sim done (exit {registry.returncode})")
                return daemon
            if registry.returncode is not None and reg.settled() and points:
                self.say(f"the day ended before {len(points)} more kill(s)")
                points.clear()
            if now > deadline:
                raise ChaosError(f"not done after {self.opts.timeout_s:g} s")
            if now - last_note > 5.0:
                last_note = now
                self.say(self._progress(reg, procs))
            await asyncio.sleep(0.05)

    def _progress(self, reg: Registry, procs: Processes) -> str:
        faults = len(FAULT_LINE.findall(procs.log("sim.log")))
        verdicts = Counter(str(d.get("verdict")) for d in reg.results.values())
        return (
            f"results {len(reg.results)} ({', '.join(f'{n} {v}' for v, n in sorted(verdicts.items()))})"
            f", retests asked {len(reg.retests_asked)}, kills {self.kills}/{self.opts.kills}"
            f", faults {faults}, station visits {reg.station_starts}"
        )

    # -- the verdict on the day -------------------------------------------------------

    def judge(self, work: Path, config: Path, reg: Registry, procs: Processes) -> dict[str, Any]:
        db = work / "site.db"
        faults = Counter(k for k, _ in FAULT_LINE.findall(procs.log("sim.log")))
        population = Population(seed=self.opts.seed)
        built: dict[str, SimVehicle] = {}
        for _ in range(self.opts.vehicles):
            sv = population.next()
            built[sv.plate] = sv
        wrong: list[str] = []
        inspections = retests = duplicates = 0
        owed = reg.awaited()
        if db.exists():
            with contextlib.closing(sqlite3.connect(db)) as c:
                rows = c.execute("SELECT id, plate, inspection_type FROM inspections").fetchall()
                inspections = len(rows)
                retests = c.execute("SELECT count(*) FROM retests").fetchone()[0]
                per_plate = Counter(plate for _, plate, _ in rows)
                duplicates += sum(n - 1 for n in per_plate.values())
                duplicates += c.execute(
                    "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM attempts "
                    "GROUP BY inspection_id, item_code, started_at)"
                ).fetchone()[0]
                kind = {iid: (plate, t) for iid, plate, t in rows}
                beam = "record"
                for iid, code, verdict in c.execute(
                    "SELECT inspection_id, item_code, verdict FROM attempts "
                    "WHERE verdict IN ('pass', 'fail')"
                ):
                    plate, itype = kind[iid]
                    sv = built.get(plate)
                    if sv is None:
                        continue
                    expect = sv.expected_items(itype, beam).get(code, "pass")
                    if verdict != expect:
                        wrong.append(f"{iid} {plate} {code}: {verdict}, built to {expect}")
                owed |= {
                    (iid, rev)
                    for iid, rev in c.execute(
                        "SELECT inspection_id, revision FROM published_results"
                    )
                }
        not_judged = _not_judged(reg)
        lost = sorted(owed - set(reg.results))
        duplicates += reg.differing
        audit = _audit(config)
        doc = {
            "faults": sum(faults.values()),
            "kills": self.kills,
            "inspections": inspections,
            "not_judged": dict(sorted(not_judged.items())),
            "retests": retests,
            "delivered": len(reg.results),
            "lost": len(lost),
            "duplicates": duplicates,
            "wrong_verdicts": len(wrong),
            "audit_ok": audit,
        }
        self.render(doc, faults, lost, wrong)
        return doc

    def ok(self, doc: dict[str, Any]) -> bool:
        return (
            self.error is None
            and doc["lost"] == 0
            and doc["duplicates"] == 0
            and doc["wrong_verdicts"] == 0
            and bool(doc["audit_ok"])
            and self.daemon_stop_ok
        )

    def render(
        self, doc: dict[str, Any], faults: Counter[str], lost: list[Any], wrong: list[str]
    ) -> None:
        p = self.out

        def line(text: str) -> None:
            print(text, file=p, flush=True)

        line("")
        line(f"chaos day, seed {self.opts.seed}: {time.monotonic() - self.t0:.0f} s")
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(faults.items()))
        line(f"  faults injected    {doc['faults']}" + (f" ({kinds})" if kinds else ""))
        line(f"  daemon kills       {doc['kills']}")
        line(f"  inspections        {doc['inspections']}")
        line(f"  retests            {doc['retests']}")
        line(f"  not-judged items   {sum(doc['not_judged'].values())}")
        for reason, n in doc["not_judged"].items():
            line(f"    {reason:<24} {n}")
        line(f"  results delivered  {doc['delivered']}")
        line(f"  results lost       {doc['lost']}")
        for iid, rev in lost[:20]:
            line(f"    {iid} revision {rev}")
        line(f"  duplicates         {doc['duplicates']}")
        line(f"  wrong verdicts     {doc['wrong_verdicts']}")
        for w in wrong[:20]:
            line(f"    {w}")
        line(f"  audit verifies     {'yes' if doc['audit_ok'] else 'NO'}")
        if not self.daemon_stop_ok:
            line("  the daemon had to be killed at the end (no stop on SIGTERM)")
        if self.error:
            line(f"  error: {self.error}")


def _not_judged(reg: Registry) -> Counter[str]:
    """Not-judged items of the delivered results by reason (its key, before ":"): an
    attempt once however many revisions carry it, an item never measured (attempt 0)
    once per revision."""
    seen: dict[tuple[str, str, Any], str] = {}
    for (iid, rev), doc in reg.results.items():
        for item in doc.get("items") or []:
            if item.get("verdict") != "not_judged":
                continue
            n = item.get("attempt") or 0
            key = (iid, str(item.get("code")), n if n else ("revision", rev))
            seen[key] = str(item.get("reason") or "unknown").split(":")[0]
    return Counter(seen.values())


def _audit(config: Path) -> bool:
    import subprocess

    r = subprocess.run(
        [sys.executable, "-m", "linectl", "audit", "verify", "--config", str(config)],
        capture_output=True,
        text=True,
    )
    return r.returncode == 0


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="scripts/chaos",
        description="A simulated day of device faults and daemon kills; see linectl/chaos.py.",
    )
    p.add_argument("--seed", type=int, default=7, help="seed of everything random (default 7)")
    p.add_argument("--vehicles", type=int, default=60, help="vehicles registered (default 60)")
    p.add_argument("--kills", type=int, default=5, help="daemon SIGKILLs (default 5)")
    p.add_argument(
        "--fault-rate",
        type=float,
        default=0.05,
        help="chance of a fault per device and simulated minute (default 0.05)",
    )
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON here")
    p.add_argument("--lines", type=int, default=2, help="inspection lines (default 2)")
    p.add_argument("--time-scale", type=float, default=20.0, help="clock speed-up (default 20)")
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="real seconds before giving up (1800)"
    )
    p.add_argument("--workdir", help="folder for the day's files (default: a fresh temp folder)")
    p.add_argument(
        "--keep", action="store_true", help="keep the folder even when the day went well"
    )
    a = p.parse_args(argv)
    if a.vehicles < 1 or a.kills < 0 or a.lines < 1 or not 0 <= a.fault_rate <= 1:
        p.error("--vehicles and --lines >= 1, --kills >= 0, --fault-rate in 0..1")
    return Options(
        seed=a.seed,
        vehicles=a.vehicles,
        kills=a.kills,
        fault_rate=a.fault_rate,
        json_path=a.json,
        lines=a.lines,
        time_scale=a.time_scale,
        timeout_s=a.timeout,
        workdir=a.workdir,
        keep=a.keep,
    )


def run(opts: Options, out: TextIO = sys.stdout) -> tuple[dict[str, Any], bool]:
    day = Day(opts, out)
    doc = asyncio.run(day.run())
    if opts.json_path:
        Path(opts.json_path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc, day.ok(doc)


def main(argv: list[str] | None = None) -> int:
    _, ok = run(parse_args(argv))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
