"""Modbus RTU: how close the ring reader comes to what a 19200 Bd line allows.

The brake controller's emulator is served by pymodbus's RTU server on one
end of a pty null-modem that delivers bytes at the line's speed
(`sim.pty.NullModem(baudrate=...)`, 10 bits a character for 8N1); the
daemon's `RbtModbus` driver and `RingReader` are on the other end. Both run
in this process: at 19200 Bd the wire, not the CPU, is the limit.

1. drain: a run of `--samples` samples fills the ring (the emulator's clock
   runs fast so this takes a fraction of a second; the wire stays real), and
   one `poll()` reads them all. The ceiling is the wire's own time for
   exactly the requests and responses that poll sent: their bytes times the
   bits of a character over the baud rate (`wire_limit_samples_per_s`), and
   the same with the 3.5-character silence Modbus RTU keeps before every
   frame (`wire_limit_with_gaps`). `fraction` is achieved over the first.
2. `--controllers` (2 unless told) on one bus (units 1, 2, ...), each a brake station's run of
   `--max-test-ms` at its poll pace, for each SAMPLE_PERIOD_MS of
   `--periods`: samples lost (every sample checked against what the
   emulator wrote), overruns, the bus's occupancy. The result is the
   shortest period (the fastest sampling) one bus keeps at 0 lost.

Usage (prints Markdown tables, medians of --repeat drains):

    .venv/bin/python benchmarks/rtu.py --json rtu.json
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

import benchlib
import numpy as np
from acquisition import RecordingAxle, compare

from linectl.clock import Clock
from linectl.config import DeviceConfig, RtuTransport
from linectl.drivers.errors import RingOverrun
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.rbt_modbus import RbtCommand, RbtModbus, RbtState
from linectl.stations.brake import POLL_S
from sim.modbus_server import serve_rtu
from sim.pty import NullModem
from sim.rbt import BrakeTesterEmulator

REQUEST_BYTES = 8  # unit, function, address (2), count (2), CRC (2)
RESPONSE_OVERHEAD = 5  # unit, function, byte count, CRC (2)
GAP_CHARS = 3.5  # Modbus RTU: silence of 3.5 characters before a frame


class Wire:
    """Counts what crosses the wire: every input-register read's bytes."""

    def __init__(self, bus: ModbusBus) -> None:
        self.bytes = 0
        self.frames = 0
        real = bus.read_input_registers

        async def counted(unit: int, address: int, count: int) -> list[int]:
            regs = await real(unit, address, count)
            self.bytes += REQUEST_BYTES + RESPONSE_OVERHEAD + 2 * count
            self.frames += 2
            return regs

        bus.read_input_registers = counted  # type: ignore[method-assign]


def bits_per_char(t: RtuTransport) -> int:
    return 1 + t.bytesize + (t.parity != "N") + t.stopbits


async def drain(samples: int, baud: int) -> dict[str, Any]:
    # The emulator's clock runs 50 times fast: the ring fills in a blink.
    clock = Clock(50.0)
    emu = BrakeTesterEmulator(clock, unit=1)
    axle = RecordingAxle(emu, 0)
    emu.place_axle(axle)
    async with (
        NullModem(baudrate=baud) as modem,
        await serve_rtu([emu.sim_device()], modem.ends[0], baud),
    ):
        transport = RtuTransport(device=modem.ends[1], baudrate=baud)
        registry = BusRegistry()
        bus = ModbusBus.for_transport(transport, 2.0, registry=registry)
        rbt = RbtModbus(DeviceConfig(id="rbt", model="rbt-modbus", transport=transport), bus)
        try:
            await rbt.configure(10, samples * 10)
            reader = rbt.ring_reader()
            await rbt.command(RbtCommand.BRAKE)
            reader.reset()
            await clock.sleep(samples * 0.010 + 0.2)  # the run's length and a margin
            if (await rbt.status()).state != RbtState.DONE:
                raise RuntimeError("the drain's run did not end on time")
            wire = Wire(bus)
            t0 = time.perf_counter()
            got = await reader.poll()
            took = time.perf_counter() - t0
            _, lost = compare([reader.samples()], [_as_array(axle)])
        finally:
            await registry.close_all()
    char_s = bits_per_char(transport) / baud
    wire_s = wire.bytes * char_s
    gaps_s = wire_s + wire.frames * GAP_CHARS * char_s
    return {
        "samples": got,
        "lost": lost,
        "requests": wire.frames // 2,
        "bytes": wire.bytes,
        "seconds": round(took, 4),
        "samples_per_s": round(got / took, 1),
        "wire_limit_samples_per_s": round(got / wire_s, 1),
        "wire_limit_with_gaps": round(got / gaps_s, 1),
        "fraction": round(wire_s / took, 3),
        "fraction_with_gaps": round(gaps_s / took, 3),
    }


def _as_array(axle: RecordingAxle) -> np.ndarray:
    """The samples of the axle's last run, as the reader returns them."""
    return np.frombuffer(axle.runs[-1].tobytes(), dtype=np.uint16).reshape(-1, 2).astype(np.int32)


async def station(
    rbt: RbtModbus, clock: Clock, period_ms: int, max_test_ms: int, polls: list[float]
) -> tuple[Any, int]:
    """One brake station's run, as it polls: (samples, overruns)."""
    await rbt.configure(period_ms, max_test_ms)
    reader = rbt.ring_reader()
    await rbt.command(RbtCommand.BRAKE)
    reader.reset()
    try:
        while True:
            t0 = time.perf_counter()
            await reader.poll()
            polls.append(time.perf_counter() - t0)
            if (await rbt.status()).state == RbtState.DONE:
                break
            await clock.poll_sleep(POLL_S)
        await reader.poll()
    except RingOverrun:
        await rbt.command(RbtCommand.STOP)
        return reader.samples(), 1
    return reader.samples(), 0


async def shared_bus(
    controllers: int, period_ms: int, max_test_ms: int, baud: int
) -> dict[str, Any]:
    clock = Clock(1.0)
    units = range(1, controllers + 1)
    emus = [BrakeTesterEmulator(clock, unit=u, name=f"rbt{u}") for u in units]
    axles = [RecordingAxle(e, i) for i, e in enumerate(emus)]
    for e, a in zip(emus, axles, strict=True):
        e.place_axle(a)
    load_before = benchlib.load_average()
    async with (
        NullModem(baudrate=baud) as modem,
        await serve_rtu([e.sim_device() for e in emus], modem.ends[0], baud),
    ):
        transport = RtuTransport(device=modem.ends[1], baudrate=baud)
        registry = BusRegistry()
        bus = ModbusBus.for_transport(transport, 1.0, registry=registry)
        rbts = [
            RbtModbus(
                DeviceConfig(id=f"rbt{u}", model="rbt-modbus", transport=transport, unit=u), bus
            )
            for u in units
        ]
        wire = Wire(bus)
        polls: list[float] = []
        t0 = time.monotonic()
        try:
            done = await asyncio.gather(
                *(station(r, clock, period_ms, max_test_ms, polls) for r in rbts)
            )
        finally:
            await registry.close_all()
        real = time.monotonic() - t0
    good = lost = overruns = 0
    for (got, over), axle in zip(done, axles, strict=True):
        g, lo = compare([got], [_as_array(axle)])
        good, lost, overruns = good + g, lost + lo, overruns + over
    char_s = bits_per_char(transport) / baud
    return {
        "controllers": controllers,
        "period_ms": period_ms,
        "samples": good,
        "lost": lost,
        "overruns": overruns,
        "p50_poll_ms": round(1000 * benchlib.percentile(polls, 0.5), 1),
        "p99_poll_ms": round(1000 * benchlib.percentile(polls, 0.99), 1),
        # ring reads alone; status reads and commands take the bus besides
        "ring_wire_share": round(wire.bytes * char_s / real, 3),
        "load_avg_before": load_before,
        "load_avg_after": benchlib.load_average(),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"machine": benchlib.machine(), "args": vars(args)}
    drains = [await drain(args.samples, args.baud) for _ in range(args.repeat)]
    doc["drain"] = benchlib.median_row(drains, keep_max=("lost",)) | {"each": drains}
    doc["shared_bus"] = []
    doc["shortest_period_ms_held"] = None
    for period in sorted(args.periods):
        row = await shared_bus(args.controllers, period, args.max_test_ms, args.baud)
        doc["shared_bus"].append(row)
        if row["lost"] == 0 and row["overruns"] == 0:
            doc["shortest_period_ms_held"] = period
            break
    doc["machine"]["load_avg_end"] = benchlib.load_average()
    return doc


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--baud", type=int, default=19200)
    p.add_argument("--samples", type=int, default=1000, help="samples of the drain (<= 1024)")
    p.add_argument(
        "--periods",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10, 20, 30, 50, 100],
        help="SAMPLE_PERIOD_MS to try on the shared bus, shortest first",
    )
    p.add_argument("--controllers", type=int, default=2, help="brake controllers on one bus")
    p.add_argument("--max-test-ms", type=int, default=30000, help="run length on the shared bus")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    logging.getLogger("sim.referee").setLevel(logging.ERROR)  # axles placed, lift down
    doc = asyncio.run(run(args))
    m = doc["machine"]
    print(
        f"Modbus RTU at {args.baud} Bd, {m['date']}, {m['cpu']} x{m['cores']}, "
        f"load average {m['load_avg_start']} .. {m['load_avg_end']}"
    )
    print(f"\nDrain of a full ring, one poll (median of {args.repeat}):")
    benchlib.print_table(
        [
            ("samples", "samples"),
            ("lost", "lost"),
            ("requests", "requests"),
            ("bytes", "bytes"),
            ("samples_per_s", "samples/s"),
            ("wire_limit_samples_per_s", "wire limit/s"),
            ("fraction", "of limit"),
            ("wire_limit_with_gaps", "limit with 3.5-char gaps/s"),
            ("fraction_with_gaps", "of that"),
        ],
        [doc["drain"]],
    )
    print(
        f"\n{args.controllers} controllers on one bus, {args.max_test_ms} ms runs "
        "at the station's pace:"
    )
    benchlib.print_table(
        [
            ("period_ms", "SAMPLE_PERIOD_MS"),
            ("samples", "samples"),
            ("lost", "lost"),
            ("overruns", "overruns"),
            ("p50_poll_ms", "poll p50 ms"),
            ("p99_poll_ms", "poll p99 ms"),
            ("ring_wire_share", "ring reads' share of the wire"),
        ],
        doc["shared_bus"],
    )
    print(f"\nshortest SAMPLE_PERIOD_MS held at 0 lost: {doc['shortest_period_ms_held']}")
    benchlib.write_json(args.json, doc)


if __name__ == "__main__":
    main()
