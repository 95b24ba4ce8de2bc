"""Site config: the example loads; a bad file is refused in one line naming the key."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from linectl.config import ConfigError, load_site_config, parse_site_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "site.example.toml"


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_example_loads() -> None:
    cfg = load_site_config(EXAMPLE)
    assert cfg.site_id
    line = cfg.lines[0]
    assert len(line.proxy_drivers) == 4
    assert line.stations[0].kind == "brake"
    assert Path(cfg.limits.dir).is_dir()  # relative paths are taken from the file's folder


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (
            lambda d: d["lines"][0]["stations"][0]["devices"][0]["transport"].update(port="x"),
            "lines[0].stations[0].devices[0].transport.port",
            "integer",
        ),
        (
            lambda d: d["lines"][0]["stations"][0]["devices"][0]["transport"].update(port=70000),
            "lines[0].stations[0].devices[0].transport.port",
            "65535",
        ),
        (
            lambda d: d["lines"][0]["stations"][0].update(kind="wash"),
            "lines[0].stations[0].kind",
            "brake",
        ),
        (
            lambda d: d["lines"][0]["stations"][0]["devices"][0].update(model="nha503"),
            "lines[0].stations[0].devices[0]",
            "speaks over serial, not tcp",
        ),
        (
            lambda d: d["lines"][0]["stations"][0]["devices"].__setitem__(
                0,
                {
                    "id": "h",
                    "model": "hlt-ascii",
                    "transport": {"kind": "serial", "device": "/dev/ttyS0"},
                },
            ),
            "lines[0].stations[0]",
            "not a brake instrument",
        ),
        (
            lambda d: d["lines"].append(
                {**d["lines"][0], "id": "L2", "io": {**d["lines"][0]["io"], "id": "io2"}}
            ),
            "(top level)",
            "used twice",
        ),
        (lambda d: d["lines"][0].update(proxy_drivers=[]), "lines[0].proxy_drivers", "at least 1"),
        (lambda d: d["lines"][0].update(proxy_drivers=["D1", "D1"]), "lines[0]", "used twice"),
        (lambda d: d.update(colour="red"), "colour", "Extra inputs"),
        (lambda d: d.pop("site_id"), "site_id", "required"),
        (lambda d: d["limits"].update(limit_set="c"), "limits.limit_set", "'a' or 'b'"),
    ],
)
def test_bad_config_names_key(mutate: Any, key: str, problem: str) -> None:
    d = example()
    mutate(d)
    with pytest.raises(ConfigError) as e:
        parse_site_config(d, "site.toml")
    msg = str(e.value)
    assert msg.startswith(f"site.toml: {key}:"), msg
    assert problem in msg
    assert "\n" not in msg


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("site_id = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_site_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_site_config(tmp_path / "missing.toml")


def test_cli_refuses_bad_config_without_traceback(tmp_path: Path) -> None:
    d = EXAMPLE.read_text(encoding="utf-8").replace("port = 15020", 'port = "fifteen"')
    f = tmp_path / "site.toml"
    f.write_text(d, encoding="utf-8")
    p = subprocess.run(
        [sys.executable, "-m", "linectl", "run", "--config", str(f)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "transport.port" in p.stderr
    assert p.stderr.count("\n") == 1
