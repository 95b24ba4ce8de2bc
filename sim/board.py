"""Simulated proxy drivers checking in by their card on the line I/O, in `linectl sim`.

In `linectl demo` the simulator shares the daemon's process and learns from
the pool who left a vehicle (sim/checkins.py). `linectl sim` runs apart, as
real drivers do: a driver knows which vehicle he was drawn for from the
board, here the line's retained status on the broker (mqtt.md's status topic:
each proxy driver with the plate he drives). When the world's vehicle leaves
the last station, its driver walks back, in 60..95 % of the line's
walk_back_s (so an honest driver is not reported late), and presses his card,
the spare input the config gives him (`checkin.inputs`).

Only lines whose `checkin.mode` is `input` are served; `console` check-ins are
an operator's press the simulator cannot make, and without `[mqtt]` there is
no board to read: both are said once at start (a line left so stalls after
each driver's first vehicle).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from typing import Any

import aiomqtt

from linectl.clock import Clock
from linectl.config import SiteConfig
from linectl.upstream.connection import connect_params
from linectl.upstream.topics import Topics
from sim.lineio import LineIOEmulator

log = logging.getLogger(__name__)

WALK_SHARE = (0.6, 0.95)  # of walk_back_s
RECONNECT_S = 1.0  # real seconds between attempts to reach the broker


def warnings(cfg: SiteConfig) -> list[str]:
    """What the simulator cannot do for this config's check-ins, one line each."""
    out = []
    for ln in cfg.lines:
        if ln.checkin.mode == "console":
            out.append(
                f"line {ln.id}: check-in at the console is an operator's press, not simulated; "
                "press it at the console (or the line waits for its drivers)"
            )
        elif ln.checkin.mode == "input" and cfg.mqtt is None:
            out.append(
                f"line {ln.id}: check-in by card needs the board ([mqtt] status topic) to "
                "know who drives which vehicle; not simulated without [mqtt]"
            )
    return out


class CardCheckins:
    """The drivers of the `input` lines: who drives which plate, and their walk back."""

    def __init__(
        self, cfg: SiteConfig, clock: Clock, ios: dict[str, LineIOEmulator], seed: int = 0
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.rng = random.Random(seed)
        self.lines = {
            ln.id: ln for ln in cfg.lines if ln.checkin.mode == "input" and cfg.mqtt is not None
        }
        self.ios = ios
        self.drives: dict[tuple[str, str], str] = {}  # (line, plate) -> driver, from the board
        self.pressed: list[tuple[str, str]] = []  # (line, driver), in order
        self._tasks: set[asyncio.Task[None]] = set()
        self.heard = asyncio.Event()  # the board has been read once

    @property
    def active(self) -> bool:
        return bool(self.lines)

    def read(self, line: str, status: dict[str, Any]) -> None:
        """One status message: note each driver's plate."""
        for d in status.get("proxy_drivers") or []:
            if d.get("plate") and d.get("id"):
                self.drives[(line, str(d["plate"]))] = str(d["id"])
        self.heard.set()

    async def watch_board(self) -> None:
        """Read the lines' status topics for ever, reconnecting as needed."""
        assert self.cfg.mqtt is not None
        topics = Topics(self.cfg.mqtt.topic_prefix, self.cfg.site_id)
        params = connect_params(self.cfg.mqtt, f"{self.cfg.site_id}-sim-board")
        by_topic = {topics.status(line): line for line in self.lines}
        while True:
            try:
                async with params.client() as client:
                    for topic in by_topic:
                        await client.subscribe(topic, qos=1)
                    async for message in client.messages:
                        line = by_topic.get(str(message.topic))
                        with contextlib.suppress(ValueError, TypeError, AttributeError):
                            doc = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                            if line and isinstance(doc, dict):
                                self.read(line, doc)
            except aiomqtt.MqttError as e:
                log.info("sim: board not readable (%s); trying again", e)
                await asyncio.sleep(RECONNECT_S)

    def trip_ended(self, line: str, plate: str) -> None:
        """The world's vehicle left the line (or was sent off): its driver walks back."""
        if line not in self.lines:
            return
        task = asyncio.create_task(self._walk(line, plate), name=f"walk-{line}-{plate}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _walk(self, line: str, plate: str) -> None:
        ln = self.lines[line]
        await self.clock.sleep(self.rng.uniform(*WALK_SHARE) * ln.walk_back_s)
        driver = self.drives.get((line, plate))
        if driver is None:
            log.warning("sim: %s: nobody on the board drove %s; no card pressed", line, plate)
            return
        address = ln.checkin.inputs[driver]
        log.info(
            "sim: %s: %s back from %s, presses his card (input %d)", line, driver, plate, address
        )
        self.pressed.append((line, driver))
        await self.ios[ln.io.id].press(address)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
