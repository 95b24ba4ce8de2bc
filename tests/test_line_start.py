"""A line whose I/O module is not there yet when the daemon starts waits for it: the
station PC booted first, the module comes later, the line then runs (it used to end
the daemon with a traceback)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from diag_fixtures import free_port
from modbus_fixtures import eventually

from linectl.clock import Clock
from linectl.demo import demo_config
from linectl.drivers.lineio_modbus import Prompt
from linectl.site import Site, open_store
from sim.lineio import LineIOEmulator
from sim.modbus_server import serve_tcp


async def test_the_line_waits_for_its_io_module(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    (tmp_path / "tty").mkdir()
    port = free_port()
    cfg = demo_config("t1", 1, url, tmp_path / "tty", ("brake",))
    line = cfg.lines[0]
    io = line.io.model_copy(
        update={"transport": line.io.transport.model_copy(update={"port": port})}
    )
    cfg = cfg.model_copy(update={"lines": [line.model_copy(update={"io": io})]})
    store = await open_store(url)
    site = Site(cfg, Clock(100), store)
    task = asyncio.create_task(site.run())
    try:
        await asyncio.wait_for(site.ready.wait(), 10)
        runner = site.lines[0]
        stats = runner.io.health.stats

        async def refused() -> int:
            return stats.errors_by_kind["unreachable"]

        await eventually(refused, lambda n: n >= 2, timeout_s=10)  # refused, tried again
        assert not task.done() and not runner.io.health.ok
        emu = LineIOEmulator(Clock(100), 1)
        async with await serve_tcp([emu.sim_device()], "127.0.0.1", port):
            # the line starts: it blanks the station's display, SEQ moving on from 0
            block = await asyncio.wait_for(emu.wait_prompt(0, after_seq=0), 30)
            assert block.code == Prompt.BLANK and runner.io.health.ok
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.aclose()
