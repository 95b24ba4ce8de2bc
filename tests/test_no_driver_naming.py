"""Nothing may name a vehicle's proxy driver: no config key, API path or body field,
console form or command-line option. Each door is walked whole, so a new one that
could name a driver fails here."""

from __future__ import annotations

import argparse
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import registration, serving
from pydantic import BaseModel
from site_fixtures import running_site

import linectl
from linectl.cli import build_parser
from linectl.config import ConfigError, LineConfig, SiteConfig, parse_site_config
from linectl.http.app import ROUTERS

TEMPLATES = Path(linectl.__file__).parent / "http" / "templates"
# The only places a driver id appears in a request: whose duty or return is
# reported. Neither takes a vehicle, so neither can pair a driver with one.
DRIVER_PATHS = {
    "/api/drivers/{driver_id}/duty",
    "/api/drivers/{driver_id}/checkin",
    "/drivers/{driver_id}/duty",
    "/drivers/{driver_id}/checkin",
}


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for f in model.model_fields.values():
        stack: list[Any] = [f.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                _models(t, seen)
            stack.extend(typing.get_args(t))


def test_no_config_key_names_a_driver_for_a_vehicle() -> None:
    models: set[type[BaseModel]] = set()
    _models(SiteConfig, models)
    keys = {(m.__name__, k) for m in models for k in m.model_fields}
    naming = {(m, k) for m, k in keys if "driver" in k.lower() or "assign" in k.lower()}
    # The roster (who works the line) and the assignment policy (how many, never who).
    assert naming == {("LineConfig", "proxy_drivers"), ("LineConfig", "assignment")}
    line_models = {m.__name__: m for m in models}
    assert set(line_models["AssignmentConfig"].model_fields) == {
        "policy",
        "window",
        "min_idle",
        "hold_s",
    }
    assert set(line_models["ProxyDriverConfig"].model_fields) == {"id", "name", "on_duty", "breaks"}
    # The check-in inputs name drivers, but only to say whose card an input is.
    assert set(line_models["CheckinConfig"].model_fields) == {"mode", "inputs"}
    assert "inputs" in LineConfig.model_fields["checkin"].annotation.model_fields  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "extra",
    [
        {"assignment": {"policy": "joint", "driver": "D1"}},
        {"assignment": {"policy": "D1"}},
        {"driver_for": {"鲁G12345": "D1"}},
        {"checkin": {"mode": "timer", "driver": "D1"}},
    ],
)
def test_a_config_that_tries_to_name_one_is_refused(extra: dict[str, Any]) -> None:
    tcp = {"kind": "tcp", "host": "127.0.0.1"}
    line = {
        "id": "L1",
        "io": {"id": "io", "model": "lineio-modbus", "transport": {**tcp, "port": 502}},
        "stations": [
            {
                "id": "b",
                "kind": "brake",
                "devices": [{"id": "r", "model": "rbt-modbus", "transport": {**tcp, "port": 503}}],
            }
        ],
        "proxy_drivers": ["D1", "D2"],
    }
    parse_site_config({"site_id": "s", "lines": [line]}, "t")
    with pytest.raises(ConfigError):
        parse_site_config({"site_id": "s", "lines": [{**line, **extra}]}, "t")


def _options(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, str]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _options(sub, f"{path} {name}")
        else:
            out += [(path.strip(), opt) for opt in action.option_strings]
            if not action.option_strings:
                out.append((path.strip(), action.dest))
    return out


def test_no_command_line_option_names_a_driver() -> None:
    options = _options(build_parser())
    assert len(options) > 50  # every command walked
    naming = [(cmd, o) for cmd, o in options if re.search("driver|assign", o, re.I)]
    # `demo --assignment` takes a policy name (choices), never a driver.
    assert naming == [("demo", "--assignment")]
    demo = next(
        a
        for a in build_parser()._subparsers._group_actions[0].choices["demo"]._actions  # type: ignore[union-attr]
        if "--assignment" in a.option_strings
    )
    assert set(demo.choices or ()) == {"idle", "window", "hold", "joint"}


def test_no_console_form_has_a_driver_field() -> None:
    names = set()
    for page in TEMPLATES.glob("*.html"):
        names |= set(re.findall(r'name="([^"]+)"', page.read_text(encoding="utf-8")))
    assert names and not {n for n in names if "driver" in n.lower() or "assign" in n.lower()}
    # The forms that post about a driver: duty and check-in, no vehicle in them.
    actions = set()
    for page in TEMPLATES.glob("*.html"):
        actions |= set(re.findall(r'action="([^"]*driver[^"]*)"', page.read_text(encoding="utf-8")))
    assert {re.sub(r"\{\{ d\.id \}\}", "{driver_id}", a) for a in actions} <= DRIVER_PATHS


async def test_no_api_path_or_body_names_a_driver_for_a_vehicle(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=("brake",)) as rig, serving(rig.ops) as api:
        # Every route: the app's own and each router's (FastAPI 0.165 keeps included
        # routers opaque in app.routes, so they are read where they are defined).
        routes = [*api.server.app.routes, *(r for router in ROUTERS for r in router.routes)]
        paths = {str(getattr(r, "path", "")) for r in routes}
        assert "/api/inspections/{inspection_id}/abort" in paths
        driver_paths = {p for p in paths if "driver" in p}
        assert driver_paths <= DRIVER_PATHS and "/api/drivers/{driver_id}/checkin" in driver_paths
        op = api.client("operator")
        for path, body in (
            ("/api/drivers/L1D1/duty", {"on_duty": True, "inspection_id": "x"}),
            ("/api/drivers/L1D1/checkin", {"inspection_id": "x"}),
            ("/api/drivers/L1D1/checkin", {"plate": "鲁G12345"}),
            ("/api/lines/L1/pause", {"reason": "x", "proxy_driver": "L1D1"}),
            ("/api/registrations", registration("r-x", proxy_driver="L1D1")),
        ):
            r = await op.post(path, json=body)
            assert r.status_code == 422, (path, r.text)
