"""`linectl sim --config`: the instruments of a site config, reachable as hardware would be."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from mqtt_broker import free_port

from linectl.config import REPO_DIR, load_site_config
from linectl.drivers.devices import DeviceSet
from linectl.drivers.hlt_ascii import HltAscii
from linectl.drivers.rbt_modbus import RbtState


async def test_sim_serves_the_example_site(tmp_path: Path) -> None:
    text = (REPO_DIR / "config" / "site.example.toml").read_text(encoding="utf-8")
    text = text.replace("port = 15020", f"port = {free_port()}").replace(
        "port = 15021", f"port = {free_port()}"
    )
    text = text.replace('dir = "limits"', f'dir = "{REPO_DIR / "config" / "limits"}"')
    cfg_file = tmp_path / "site.toml"
    cfg_file.write_text(text, encoding="utf-8")
    cfg = load_site_config(cfg_file)
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "linectl", "sim", "--config", str(cfg_file), "--time-scale", "50"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    devices = DeviceSet()
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert "simulating site zc01" in first.decode()  # listening by then
        line = cfg.lines[0]
        rbt = devices.rbt(line.stations[0].devices[0])
        assert (await rbt.status()).state == RbtState.IDLE
        tester = devices.serial(HltAscii, line.stations[1].devices[0])
        assert links(tester.cfg.transport.device)  # type: ignore[union-attr]
        await tester.reset()  # the headlamp tester answers on its linked pty
    finally:
        await devices.aclose()
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
    gone = [d.transport.device for d in cfg.lines[0].stations[2].devices]  # type: ignore[union-attr]
    assert not any(links(p) for p in gone)  # the links are removed on exit


def links(path: str) -> bool:
    return os.path.lexists(path) and Path(path).is_symlink()
