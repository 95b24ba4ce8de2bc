"""Fuzz: the site config, the limits files and the register maps, valid and broken.

Each starts from the file the project ships (config/site.example.toml,
config/limits/*.toml, linectl/drivers/maps/*.toml) and is broken two ways:
as text (bytes changed, cut, spliced with invalid UTF-8 or arrays nested
thousands deep) and as data (one key anywhere set to a value of the wrong
type, out of range, inf or NaN, a string with a NUL byte, a deep list). The
loader gives a usable object or its own error (ConfigError, LimitsError,
RegisterMapError) with one line naming the file: never another exception.
A site config that loads also builds a site: every driver and bus of it.
"""

from __future__ import annotations

import copy
import math
import shutil
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import Mutation, mutations
from hypothesis import given
from hypothesis import strategies as st

from linectl.clock import Clock
from linectl.config import (
    DEFAULT_LIMITS_DIR,
    ConfigError,
    SiteConfig,
    load_site_config,
    parse_site_config,
)
from linectl.config import _resolve_paths as resolve_paths
from linectl.daemon import Site, open_store
from linectl.drivers.regmap import MAPS_DIR, RegisterMap, RegisterMapError, parse_map
from linectl.stations.limits import Limits, LimitsError, load_limits
from linectl.store.repo import AsyncStore

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "site.example.toml"
LIMITS = {f.name: f.read_bytes() for f in sorted(Path(DEFAULT_LIMITS_DIR).glob("*.toml"))}
MAPS = {f.name: tomllib.loads(f.read_text("utf-8")) for f in sorted(MAPS_DIR.glob("*.toml"))}


def paths(obj: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a TOML document (table keys and list indexes)."""
    out = [at] if at else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*at, i))
    return out


def set_path(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    target = out
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    return out


toml_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(10**18, 10**40),
    st.floats(),  # inf and nan included, as TOML allows them
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(["", "a\x00b", "/dev/null", "../../etc", "x" * 5000, "Asia/Nowhere", "0"]),
    st.lists(st.integers(), max_size=4),
    st.lists(st.text(max_size=4), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
    st.integers(50, 400).map(lambda n: [[]] * 1 if n < 0 else _deep(n)),
)


def _deep(n: int) -> Any:
    v: Any = 0
    for _ in range(n):
        v = [v]
    return v


@st.composite
def broken_docs(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    keys = paths(doc)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(keys))
        if draw(st.booleans()) or not isinstance(path[-1], str):
            doc = set_path(doc, path, draw(toml_values))
        else:
            parent = doc
            for k in path[:-1]:
                parent = parent[k]
            doc = copy.deepcopy(doc)
            target = doc
            for k in path[:-1]:
                target = target[k]
            target.pop(path[-1], None)
        keys = paths(doc) or [("site_id",)]
    return doc


text_breaks = st.one_of(
    mutations(max_extra=24),
    st.integers(100, 5000).map(lambda n: lambda b: b + b"\nz = " + b"[" * n + b"]" * n + b"\n"),
    st.sampled_from([b"\xff\xfe", b"\xc3", b"\x00", b"= = =", b"[[[", b'"""']).map(
        lambda junk: lambda b: b[: len(b) // 2] + junk + b[len(b) // 2 :]
    ),
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    s = await open_store(f"sqlite:///{tmp_path / 'site.db'}")
    try:
        yield s
    finally:
        await s.aclose()


async def builds_a_site(cfg: SiteConfig, store: AsyncStore) -> None:
    """Every driver and bus of an accepted config can be made (nothing is opened);
    a limits folder that is not there is refused by name, as at the daemon's start."""
    try:
        site = Site(cfg, Clock(100), store)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    await site.devices.aclose()


@given(mutate=text_breaks)
async def test_site_config_text(tmp_path: Path, store: AsyncStore, mutate: Mutation) -> None:
    f = tmp_path / "site.toml"  # beside a copy of the limits its `dir = "limits"` names
    if not (tmp_path / "limits").exists():
        shutil.copytree(DEFAULT_LIMITS_DIR, tmp_path / "limits")
    f.write_bytes(mutate(EXAMPLE.read_bytes()))
    try:
        cfg = load_site_config(f)
    except ConfigError as e:
        assert str(e).startswith(str(f)) and "\n" not in str(e)
        return
    await builds_a_site(cfg, store)


@given(doc=broken_docs(tomllib.loads(EXAMPLE.read_text("utf-8"))))
async def test_site_config_values(tmp_path: Path, store: AsyncStore, doc: dict[str, Any]) -> None:
    try:
        resolve_paths(doc, EXAMPLE.parent)
        cfg = parse_site_config(doc, "site.toml")
    except ConfigError as e:
        assert str(e).startswith("site.toml: ") and "\n" not in str(e)
        return
    await builds_a_site(cfg, store)
    for ln in cfg.lines:  # what an accepted config promises
        assert 0 < ln.walk_back_s <= 3600 or ln.walk_back_s == 0
        assert all(math.isfinite(d.timeout_s) for d in (ln.io, *ln.devices()))


@given(name=st.sampled_from(sorted(LIMITS)), mutate=text_breaks)
def test_limits_text(tmp_path_factory: pytest.TempPathFactory, name: str, mutate: Mutation) -> None:
    d = tmp_path_factory.mktemp("limits")
    for n, data in LIMITS.items():
        (d / n).write_bytes(mutate(data) if n == name else data)
    try:
        assert isinstance(load_limits(d), Limits)
    except LimitsError as e:
        assert str(e).startswith(str(d / name)) and "\n" not in str(e)


@given(
    name=st.sampled_from(sorted(LIMITS)),
    data=st.data(),
)
def test_limits_values(
    tmp_path_factory: pytest.TempPathFactory, name: str, data: st.DataObject
) -> None:
    doc = data.draw(broken_docs(tomllib.loads(LIMITS[name].decode("utf-8"))))
    d = tmp_path_factory.mktemp("limits")
    for n, raw in LIMITS.items():
        (d / n).write_bytes(raw)
    (d / name).write_text(dump_toml(doc), encoding="utf-8")
    try:
        limits = load_limits(d)
    except LimitsError as e:
        assert str(e).startswith(str(d / name)) and "\n" not in str(e)
        return
    assert limits.emission.settle_readings <= 600 and limits.emission.measured_accelerations <= 10


@given(name=st.sampled_from(sorted(MAPS)), data=st.data())
def test_register_maps(name: str, data: st.DataObject) -> None:
    doc = data.draw(broken_docs(MAPS[name]))
    try:
        m = parse_map(doc, name)
    except RegisterMapError as e:
        assert str(e).startswith(name) and "\n" not in str(e)
        return
    assert isinstance(m, RegisterMap)
    for f in m.fields.values():
        assert f.address >= 0 and f.end <= 0x10000


# --- a small TOML writer: enough for the limits files, which hold tables of scalars ------


def dump_toml(doc: dict[str, Any]) -> str:
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return (
                "nan"
                if math.isnan(v)
                else ("inf" if v > 0 else "-inf")
                if math.isinf(v)
                else repr(v)
            )
        if isinstance(v, str):
            return (
                '"'
                + "".join(
                    c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}"
                    for c in v
                    if ord(c) < 0xD800 or ord(c) > 0xDFFF
                )
                + '"'
            )
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + "}"

    def table(t: dict[str, Any], name: str) -> None:
        scalars = {k: v for k, v in t.items() if not isinstance(v, dict)}
        if name:
            lines.append(f"[{name}]")
        for k, v in scalars.items():
            lines.append(f'"{k}" = {value(v)}')
        for k, v in t.items():
            if isinstance(v, dict):
                table(v, f'{name}."{k}"' if name else f'"{k}"')

    table(doc, "")
    return "\n".join(lines) + "\n"
