"""Shared rigs of the Modbus tests: emulators on a real TCP socket (port 0) or
on RTU through a real pty null-modem, scripted axles, and a clock the test
moves by hand where exact sample counts matter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from pymodbus.simulator import SimDevice

from linectl.clock import Clock
from linectl.config import RtuTransport, TcpTransport
from sim.modbus_server import ServerHandle, serve_rtu, serve_tcp
from sim.pty import NullModem

T = TypeVar("T")


def units(newton: float) -> int:
    """devices.md: forces in 10 N units (rounded, within a u16)."""
    return min(65535, max(0, round(newton / 10)))


class ManualClock(Clock):
    """A clock that only moves when the test says so."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.t = 0.0

    def now(self) -> float:
        return self.t


class ScriptedAxle:
    """An axle whose brake forces rise linearly from the first sample of a run,
    that slips left/right from given run times on, and that records every
    sample it was asked for."""

    def __init__(
        self,
        left_load_kg: float = 512.4,
        right_load_kg: float = 498.6,
        slip_left_at: float | None = None,
        slip_right_at: float | None = None,
    ) -> None:
        self.left_load_kg = left_load_kg
        self.right_load_kg = right_load_kg
        self.slip_left_at = slip_left_at
        self.slip_right_at = slip_right_at
        self.produced: list[tuple[float, float, float]] = []  # (t, left N, right N)
        self._t0: float | None = None

    def new_run(self) -> None:
        self.produced.clear()
        self._t0 = None

    def sample(self, t: float) -> tuple[float, float, bool, bool]:
        if self._t0 is None:
            self._t0 = t
        rel = t - self._t0
        left = 153.0 + 2480.4 * rel
        right = 118.0 + 2305.6 * rel
        self.produced.append((t, left, right))
        slip_l = self.slip_left_at is not None and rel >= self.slip_left_at
        slip_r = self.slip_right_at is not None and rel >= self.slip_right_at
        return left, right, slip_l, slip_r

    def expected(self) -> list[list[int]]:
        return [[units(left), units(right)] for _, left, right in self.produced]


@asynccontextmanager
async def served(
    devices: Sequence[SimDevice], kind: str
) -> AsyncIterator[tuple[TcpTransport | RtuTransport, ServerHandle]]:
    """Serve `devices` over "tcp" (port 0) or "rtu" (a NullModem); yields the
    transport the daemon side should use and the server handle."""
    if kind == "tcp":
        async with await serve_tcp(devices, "127.0.0.1", 0) as handle:
            yield TcpTransport(host="127.0.0.1", port=handle.port), handle
    else:
        async with NullModem() as modem, await serve_rtu(devices, modem.ends[0], 19200) as handle:
            yield RtuTransport(device=modem.ends[1]), handle


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout_s: float = 5.0,
    pause_s: float = 0.002,
) -> T:
    """Ask `probe` until `done(result)`, within `timeout_s` real seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout_s} s; last: {value!r}")
        await asyncio.sleep(pause_s)
