"""Running `linectl diag ...` from a test: parsed and dispatched as `main` does, in a
worker thread (the command runs its own event loop, while the test's loop keeps
serving the emulators), with its stdout and stderr captured; and a site config
file for the simulator on free ports."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mqtt_broker import free_port

from linectl.cli import build_parser, dispatch
from linectl.config import REPO_DIR


async def diag(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `linectl diag *argv`."""
    args = build_parser().parse_args(["diag", *argv])
    code = await asyncio.to_thread(dispatch, args)
    out, err = capsys.readouterr()
    return code, out, err


async def diag_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, err = await diag(capsys, *argv, "--json")
    assert out, err
    return code, json.loads(out)


def example_config(folder: Path) -> Path:
    """config/site.example.toml in `folder`, on free TCP ports (instruments and the
    HTTP listener), its serial links under `folder` (the example's relative paths),
    the repository's limits."""
    text = (REPO_DIR / "config" / "site.example.toml").read_text(encoding="utf-8")
    text = text.replace("port = 15020", f"port = {free_port()}")
    text = text.replace("port = 15021", f"port = {free_port()}")
    text = text.replace('dir = "limits"', f'dir = "{REPO_DIR / "config" / "limits"}"')
    # never the shared default port: other tests (and people) use 8080 on this machine
    text = text.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{free_port()}"')
    assert 'listen = "127.0.0.1:8080"' not in text
    path = folder / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def linectl(*argv: str, timeout_s: float = 60) -> tuple[int, str, str]:
    """The real entry point in a child process: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linectl",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
