"""Acquisition at scale: how many brake controllers one daemon process drives.

N simulated brake controllers (sim/rbt.py), each its own Modbus TCP server as
each real controller has its own address, run in a child process so they do
not share the daemon's CPU. This process plays the daemon: one `RbtModbus`
driver and `RingReader` per controller, all on one event loop, as the brake
stations use them. Per N and per repeat, three phases against the same
servers:

1. paced: every station runs BRAKE runs back to back at SAMPLE_PERIOD_MS 10,
   polling its ring and its status every POLL_S as the brake station does.
   Every sample acquired is compared with what the simulator wrote (it
   records every sample its axles produced and sends them back): `lost` is
   every sample written and not acquired identically. Also: ring overruns,
   the real time of each `poll()` (p50, p99), and the daemon's CPU seconds
   per sample acquired.
2. flat out: the same ring readers poll back to back, no pause, for a fixed
   time: the daemon's request rate (`req_per_s`); its samples are checked too.
3. the ceiling: one bare pymodbus `AsyncModbusTcpClient` per controller does
   the same reads (SAMPLE_COUNT, the new slots split as the reader splits
   them, SAMPLE_COUNT again) back to back for the same time, with none of the
   daemon's bus lock, timeouts, health or statistics: `bare_req_per_s`.

Usage (prints a Markdown table, the medians of --repeat runs per size):

    .venv/bin/python benchmarks/acquisition.py --stations 1,4,16,32 --json acq.json
"""

from __future__ import annotations

import argparse
import array
import asyncio
import logging
import multiprocessing as mp
import multiprocessing.connection
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import benchlib
import numpy as np
from pymodbus.client import AsyncModbusTcpClient

from linectl.clock import Clock
from linectl.config import DeviceConfig, TcpTransport
from linectl.drivers.errors import DeviceError, RingOverrun
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.rbt_modbus import MAP, RbtCommand, RbtModbus, RbtState
from linectl.drivers.regmap import u32_from_registers
from linectl.stations.brake import POLL_S, SAMPLE_PERIOD_MS
from sim.modbus_server import ServerHandle, serve_tcp
from sim.rbt import BrakeTesterEmulator

FLAT_MAX_TEST_MS = 30000  # the flat-out run must outlast its phase


# -- the simulator's process -----------------------------------------------------


class RecordingAxle:
    """Forces that differ from sample to sample and station to station, each
    recorded as the controller will report it (10 N units), per run."""

    def __init__(self, emu: BrakeTesterEmulator, station: int) -> None:
        self.left_load_kg = 500.0
        self.right_load_kg = 480.0
        self._emu = emu
        self._station = station
        self._k = 0
        self.runs: list[array.array[int]] = []

    def sample(self, t: float) -> tuple[float, float, bool, bool]:
        if t == self._emu.run_started_at or not self.runs:
            self.runs.append(array.array("H"))  # sample 0 of a new run
        k = self._k = self._k + 1
        left = (k * 37 + self._station * 1009) % 60000
        right = (k * 53 + self._station * 7919 + 11) % 60000
        self.runs[-1].extend((left, right))
        return left * 10.0, right * 10.0, False, False


def _sim_process(conn: multiprocessing.connection.Connection, n: int) -> None:
    asyncio.run(_sim(conn, n))


async def _sim(conn: multiprocessing.connection.Connection, n: int) -> None:
    # The axle is placed with the lift down, which the referee notes once per
    # controller; the lift plays no part in acquisition.
    logging.getLogger("sim.referee").setLevel(logging.ERROR)
    clock = Clock(1.0)
    axles: list[RecordingAxle] = []
    handles: list[ServerHandle] = []
    for i in range(n):
        emu = BrakeTesterEmulator(clock, unit=1, name=f"rbt{i}")
        axle = RecordingAxle(emu, i)
        emu.place_axle(axle)
        axles.append(axle)
        handles.append(await serve_tcp([emu.sim_device()], "127.0.0.1", 0))
    conn.send([h.port for h in handles])
    loop = asyncio.get_running_loop()
    while True:
        ready = asyncio.Event()
        loop.add_reader(conn.fileno(), ready.set)
        await ready.wait()
        loop.remove_reader(conn.fileno())
        msg = conn.recv()
        if msg == "runs":
            conn.send([[r.tobytes() for r in a.runs] for a in axles])
            for a in axles:
                a.runs = []
        elif msg == "cpu":
            ru = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(ru.ru_utime + ru.ru_stime)
        else:
            break
    for h in handles:
        await h.close()
    conn.send("bye")


class SimFleet:
    """The child process serving N controllers, and what it is asked."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_sim_process, args=(child, n), daemon=True)
        self.proc.start()
        self.ports: list[int] = self.conn.recv()

    def ask(self, msg: str) -> Any:
        self.conn.send(msg)
        return self.conn.recv()

    def runs(self) -> list[list[np.ndarray]]:
        """Per station, each run's samples written since the last call: (n, 2)."""
        return [
            [np.frombuffer(r, dtype=np.uint16).reshape(-1, 2).astype(np.int32) for r in station]
            for station in self.ask("runs")
        ]

    def close(self) -> None:
        self.ask("stop")
        self.proc.join(10)


# -- the daemon's side ------------------------------------------------------------


@dataclass
class Station:
    rbt: RbtModbus
    runs: list[np.ndarray] = field(default_factory=list)
    poll_s: list[float] = field(default_factory=list)
    overruns: int = 0


async def _poll(st: Station, reader: Any) -> None:
    t0 = time.perf_counter()
    await reader.poll()
    st.poll_s.append(time.perf_counter() - t0)


async def paced_station(st: Station, clock: Clock, until: float, offset_s: float) -> None:
    """BRAKE runs back to back until `until` (real), as the brake station polls."""
    await asyncio.sleep(offset_s)  # stations do not start in step
    reader = st.rbt.ring_reader()
    while time.monotonic() < until:
        await st.rbt.command(RbtCommand.BRAKE)
        reader.reset()
        try:
            while True:
                await _poll(st, reader)
                if (await st.rbt.status()).state == RbtState.DONE:
                    break
                await clock.poll_sleep(POLL_S)
            await _poll(st, reader)
        except RingOverrun:
            st.overruns += 1
            await st.rbt.command(RbtCommand.STOP)
        st.runs.append(reader.samples())


async def flat_station(st: Station, until: float) -> None:
    """One long run, polled with no pause until `until`; then STOP and the rest."""
    reader = st.rbt.ring_reader()
    await st.rbt.configure(SAMPLE_PERIOD_MS, FLAT_MAX_TEST_MS)
    await st.rbt.command(RbtCommand.BRAKE)
    reader.reset()
    try:
        while time.monotonic() < until:
            await reader.poll()
        await st.rbt.command(RbtCommand.STOP)
        await reader.poll()
    except RingOverrun:
        st.overruns += 1
        await st.rbt.command(RbtCommand.STOP)
    st.runs.append(reader.samples())


class BareStation:
    """The ceiling: the reader's reads with a bare pymodbus client."""

    def __init__(self, port: int) -> None:
        self.client = AsyncModbusTcpClient("127.0.0.1", port=port, reconnect_delay=0, retries=0)
        self.requests = 0

    async def run(self, until: float) -> None:
        """One run polled with no pause until `until`, counting requests."""
        c = self.client
        if not c.connected:
            await c.connect()
        count_at, base = MAP["SAMPLE_COUNT"].address, MAP["RING"].address
        slots, per_read = MAP["RING"].slots or 0, MAP.limits["max_read_registers"] // 2
        await c.write_registers(1, [SAMPLE_PERIOD_MS, FLAT_MAX_TEST_MS], device_id=1)
        await c.write_register(0, int(RbtCommand.BRAKE), device_id=1)
        requests, first = 2, 0
        while time.monotonic() < until:
            rsp = await c.read_input_registers(count_at, count=2, device_id=1)
            count = u32_from_registers(list(rsp.registers))
            requests += 1
            i = max(first, count - slots)
            while i < count:
                slot = i % slots
                n = min(per_read, count - i, slots - slot)
                await c.read_input_registers(base + 2 * slot, count=2 * n, device_id=1)
                requests += 1
                i += n
            if count > first:
                await c.read_input_registers(count_at, count=2, device_id=1)
                requests += 1
            first = count
        await c.write_register(0, int(RbtCommand.STOP), device_id=1)
        self.requests += requests + 1


def compare(acquired: list[np.ndarray], written: list[np.ndarray]) -> tuple[int, int]:
    """(samples acquired identically, samples written and not acquired identically)."""
    good = lost = 0
    for i, w in enumerate(written):
        a = acquired[i] if i < len(acquired) else np.empty((0, 2), dtype=np.int32)
        n = min(len(a), len(w))
        same = int(np.all(a[:n] == w[:n], axis=1).sum())
        good += same
        lost += len(w) - same
    return good, lost


async def one_size(
    n: int, seconds: float, flat_seconds: float, rounds: int, max_test_ms: int
) -> dict[str, Any]:
    load_before = benchlib.load_average()
    fleet = SimFleet(n)
    registry = BusRegistry()
    clock = Clock(1.0)
    try:
        stations = []
        for i, port in enumerate(fleet.ports):
            cfg = DeviceConfig(id=f"rbt{i}", model="rbt-modbus", transport=TcpTransport(port=port))
            bus = ModbusBus.for_transport(cfg.transport, cfg.timeout_s, registry=registry)  # type: ignore[arg-type]
            stations.append(Station(RbtModbus(cfg, bus)))
        for st in stations:
            await st.rbt.configure(SAMPLE_PERIOD_MS, max_test_ms)

        def requests() -> int:
            return sum(s.rbt.health.stats.requests for s in stations)

        # 1. paced
        req0, cpu0, sim_cpu0 = requests(), time.process_time(), fleet.ask("cpu")
        t0 = time.monotonic()
        until = t0 + seconds
        await asyncio.gather(
            *(paced_station(st, clock, until, POLL_S * i / n) for i, st in enumerate(stations))
        )
        paced_real = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        sim_cpu = fleet.ask("cpu") - sim_cpu0
        paced_requests = requests() - req0
        written = fleet.runs()
        good = lost = 0
        for st, w in zip(stations, written, strict=True):
            g, lo = compare(st.runs, w)
            good, lost = good + g, lost + lo
        polls = [p for st in stations for p in st.poll_s]
        overruns = sum(st.overruns for st in stations)

        # 2. and 3. flat out, the daemon's drivers and the bare clients in
        # alternating slices, so a change of the machine's load hits both alike.
        for st in stations:
            st.runs = []
        bares = [BareStation(p) for p in fleet.ports]
        flat_real = bare_real = flat_cpu = bare_cpu = 0.0
        flat_requests = flat_lost = 0
        for _ in range(rounds):
            req0, cpu0 = requests(), time.process_time()
            t0 = time.monotonic()
            await asyncio.gather(*(flat_station(st, t0 + flat_seconds) for st in stations))
            flat_real += time.monotonic() - t0
            flat_cpu += time.process_time() - cpu0
            flat_requests += requests() - req0
            for st, w in zip(stations, fleet.runs(), strict=True):
                flat_lost += compare(st.runs, w)[1]
                st.runs = []
            t0, cpu0 = time.monotonic(), time.process_time()
            await asyncio.gather(*(b.run(t0 + flat_seconds) for b in bares))
            bare_real += time.monotonic() - t0
            bare_cpu += time.process_time() - cpu0
            fleet.runs()  # the bare clients' runs are not acquisitions
        overruns = sum(st.overruns for st in stations)
        for b in bares:
            b.client.close()
    finally:
        await registry.close_all()
        fleet.close()
    req_per_s = flat_requests / flat_real
    bare_requests = sum(b.requests for b in bares)
    bare_per_s = bare_requests / bare_real
    return {
        "stations": n,
        "samples": good,
        "lost": lost + flat_lost,
        "overruns": overruns,
        "p50_poll_ms": round(1000 * benchlib.percentile(polls, 0.50), 3),
        "p99_poll_ms": round(1000 * benchlib.percentile(polls, 0.99), 3),
        "req_per_s": round(req_per_s, 1),
        "bare_req_per_s": round(bare_per_s, 1),
        "ratio_to_bare": round(req_per_s / bare_per_s, 3),
        "cpu_s_per_sample": round(cpu / max(good, 1), 9),
        "paced_req_per_s": round(paced_requests / paced_real, 1),
        # CPU of this process per request, flat out: steadier than the rates
        # on a shared machine, and the driver's own cost is the difference.
        "cpu_us_per_req": round(1e6 * flat_cpu / max(flat_requests, 1), 1),
        "bare_cpu_us_per_req": round(1e6 * bare_cpu / max(bare_requests, 1), 1),
        "daemon_cpu_share": round(cpu / paced_real, 3),
        "sim_cpu_share": round(sim_cpu / paced_real, 3),
        "load_avg_before": load_before,
        "load_avg_after": benchlib.load_average(),
    }


COLUMNS = [
    ("stations", "stations"),
    ("samples", "samples"),
    ("lost", "lost"),
    ("overruns", "overruns"),
    ("p50_poll_ms", "poll p50 ms"),
    ("p99_poll_ms", "poll p99 ms"),
    ("paced_req_per_s", "paced req/s"),
    ("req_per_s", "flat-out req/s"),
    ("bare_req_per_s", "bare req/s"),
    ("ratio_to_bare", "ratio"),
    ("cpu_s_per_sample", "CPU s/sample"),
    ("cpu_us_per_req", "CPU µs/req"),
    ("bare_cpu_us_per_req", "bare CPU µs/req"),
    ("daemon_cpu_share", "daemon CPU"),
    ("sim_cpu_share", "sim CPU"),
    ("load_avg_before", "load before"),
    ("load_avg_after", "load after"),
]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"machine": benchlib.machine(), "args": vars(args), "runs": []}
    for n in args.stations:
        rows = []
        for _ in range(args.repeat):
            try:
                rows.append(
                    await one_size(
                        n, args.seconds, args.flat_seconds, args.rounds, args.max_test_ms
                    )
                )
            except DeviceError as e:
                raise SystemExit(f"{n} stations: {e}") from e
        doc["runs"].append(
            benchlib.median_row(rows, keep_max=("lost", "overruns")) | {"each": rows}
        )
    doc["machine"]["load_avg_end"] = benchlib.load_average()
    return doc


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--stations",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 4, 16, 32],
        help="comma-separated station counts (default 1,4,16,32)",
    )
    p.add_argument("--seconds", type=float, default=12.0, help="paced phase, real seconds")
    p.add_argument("--flat-seconds", type=float, default=1.0, help="one flat-out or bare slice")
    p.add_argument("--rounds", type=int, default=3, help="flat-out and bare slices, alternating")
    p.add_argument("--max-test-ms", type=int, default=3000, help="MAX_TEST_MS of a paced run")
    p.add_argument("--repeat", type=int, default=3, help="runs per size; the table has medians")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    doc = asyncio.run(run(args))
    m = doc["machine"]
    print(
        f"acquisition, {m['date']}, {m['cpu']} x{m['cores']}, Python {m['python']}, "
        f"median of {args.repeat}; load average {m['load_avg_start']} .. {m['load_avg_end']}"
    )
    benchlib.print_table(COLUMNS, doc["runs"])
    benchlib.write_json(args.json, doc)


if __name__ == "__main__":
    main()
