"""packaging/linectl.service: systemd reads it without complaint, and it is hardened
as the issue asks (checked by systemd's own tools where this machine has them)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linectl.config import REPO_DIR

UNIT = REPO_DIR / "packaging" / "linectl.service"


def service() -> configparser.SectionProxy:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text(encoding="utf-8"))
    return cp["Service"]


def test_the_unit_says_what_the_issue_asks() -> None:
    s = service()
    assert s["Type"] == "notify" and s["Restart"] == "on-failure"
    assert s["User"] == "linectl" and s["SupplementaryGroups"] == "dialout"
    assert s["ProtectSystem"] == "strict" and s["ReadWritePaths"] == "/var/lib/linectl"
    assert s["ExecStart"].split()[1:] == ["run", "--config", "/etc/linectl/site.toml"]
    assert "WatchdogSec" in s and s["NoNewPrivileges"] == "true"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_reads_it_and_rates_it_hardened(tmp_path: Path) -> None:
    # verify wants the program to exist: point ExecStart at this checkout's linectl
    unit = tmp_path / "linectl.service"
    linectl = Path(sys.executable).parent / "linectl"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/opt/linectl/venv/bin/linectl", str(linectl)),
        encoding="utf-8",
    )
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=25", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert security.returncode == 0, security.stdout[-2000:]
    assert "Overall exposure level for linectl.service: 1." in security.stdout
