"""What the emulated RS-232 instruments share: a pty, a serve loop, and line noise.

An emulator owns a `PtyPort` master; the daemon opens the slave path (or the
link made at the configured device path) as it would a real port. The serve
loop hands every chunk of bytes the daemon wrote to the protocol
(`on_bytes`, which keeps its own buffer, since a frame may arrive in pieces)
and writes back the replies. `LineNoise` dirties the line on purpose for
tests and the demo: random bytes between frames, or a reply with one byte
flipped, from a seeded `random.Random`. `mute` makes the instrument deaf, as
if switched off; `garbled` flips a byte of every reply (an injected fault,
sim/faults.py); `unplug()` and `replug()` take the port away (the link at the
device path is gone and the daemon's open port hangs up) and bring a new
one back at the same path, as a USB adapter pulled out and put back. Each emulator reports what the line computer did out of
order to its `referee` (sim/referee.py).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field

from linectl.clock import Clock
from sim.pty import PtyPort
from sim.referee import Referee

log = logging.getLogger(__name__)


@dataclass
class LineNoise:
    """Per reply: the chance of stray bytes after it, and of one of its bytes flipped."""

    between: float = 0.0
    corrupt: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    max_bytes: int = 8
    injected: int = 0  # stray-byte bursts written
    corrupted: int = 0  # replies sent with a flipped byte

    def dirty(self, reply: bytes) -> bytes:
        out = bytearray(reply)
        if out and self.rng.random() < self.corrupt:
            i = self.rng.randrange(len(out))
            out[i] ^= 1 << self.rng.randrange(8)
            self.corrupted += 1
        if self.rng.random() < self.between:
            n = self.rng.randint(1, self.max_bytes)
            out += bytes(self.rng.randrange(256) for _ in range(n))
            self.injected += 1
        return bytes(out)


class SerialEmulator(abc.ABC):
    """One instrument behind a pty; subclasses speak the protocol in `on_bytes`."""

    def __init__(self, clock: Clock, *, name: str = "", referee: Referee | None = None) -> None:
        self.clock = clock
        self.name = name or type(self).__name__
        self.referee = referee or Referee()
        self.noise: LineNoise | None = None
        self.mute = False
        self.garbled = False
        self.requests = 0  # frames answered
        self._garble_rng = random.Random(0)
        self._device_path: str | None = None
        self._port: PtyPort | None = None
        self._task: asyncio.Task[None] | None = None

    def violation(self, kind: str, detail: str) -> None:
        self.referee.note(self.clock.now(), self.name, kind, detail)

    @property
    def path(self) -> str:
        """The slave device path the daemon opens."""
        if self._port is None:
            raise RuntimeError("emulator not started")
        return self._port.path

    async def start(self, device_path: str | None = None) -> str:
        """Open the pty (linked at `device_path` when given) and serve; returns the path
        the daemon should open."""
        if self._port is not None:
            raise RuntimeError("emulator already started")
        self._port = PtyPort()
        self._device_path = device_path
        path = self._port.path
        if device_path:
            path = str(self._port.link(device_path))
        self._task = asyncio.create_task(self._serve(self._port), name=f"emu-{type(self).__name__}")
        return path

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        port, self._port = self._port, None
        if port is not None:
            port.close()

    async def unplug(self) -> None:
        """The port disappears: the daemon's open one hangs up, the path is gone."""
        await self.aclose()

    async def replug(self) -> None:
        """A new port at the same device path (after `unplug`)."""
        if self._port is None:
            await self.start(self._device_path)

    def _garble(self, reply: bytes) -> bytes:
        out = bytearray(reply)
        if out:
            i = self._garble_rng.randrange(len(out))
            out[i] ^= 1 << self._garble_rng.randrange(8)
        return bytes(out)

    async def _serve(self, port: PtyPort) -> None:
        while True:
            data = await port.read()
            if not data:
                continue
            for reply in self.on_bytes(data):
                if self.mute:
                    continue
                self.requests += 1
                out = self.noise.dirty(reply) if self.noise else reply
                if self.garbled:
                    out = self._garble(out)
                port.write(out)

    @abc.abstractmethod
    def on_bytes(self, data: bytes) -> list[bytes]:
        """The replies to the bytes the daemon wrote (kept in the emulator's buffer
        until a whole frame is there)."""
