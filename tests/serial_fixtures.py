"""Shared rigs of the serial tests: an emulator on a real pty with its driver opened
on the slave path, and a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from linectl.clock import Clock
from linectl.config import DeviceConfig
from linectl.drivers.serial import SerialDevice
from sim.serial_emulator import SerialEmulator

D = TypeVar("D", bound=SerialDevice)


class ManualClock(Clock):
    """A clock that only moves when the test says so."""

    def __init__(self, t: float = 0.0) -> None:
        super().__init__(1.0)
        self.t = t

    def now(self) -> float:
        return self.t


def device_config(model: str, path: str | Path, timeout_s: float = 0.3) -> DeviceConfig:
    return DeviceConfig.model_validate(
        {
            "id": f"{model}-1",
            "model": model,
            "transport": {"kind": "serial", "device": str(path)},
            "timeout_s": timeout_s,
        }
    )


@asynccontextmanager
async def on_pty(
    emu: SerialEmulator, driver: type[D], link: Path | None = None, timeout_s: float = 0.3
) -> AsyncIterator[D]:
    """`emu` served on a pty (linked at `link` when given), `driver` opened on it."""
    path = await emu.start(str(link) if link else None)
    dev = driver(device_config(driver.model, path, timeout_s))
    try:
        await dev.start()
        yield dev
    finally:
        await dev.aclose()
        await emu.aclose()
