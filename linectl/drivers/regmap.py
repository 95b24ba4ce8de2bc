"""Modbus register maps as data, and the value codecs of devices.md.

Each Modbus device model has a map in `linectl/drivers/maps/<model>.toml`
naming every address, count and value range of its section of devices.md.
The daemon's driver and the simulator's emulator of a model read the same
map, so they cannot drift apart; the tests check the wire against addresses
written by hand from devices.md, so a wrong map fails them.

The codecs are the conventions every Modbus device of devices.md shares:
32-bit values high word first, text UTF-8 and NUL-padded, two bytes a
register with the first byte in the high half, never cut inside a character.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

from linectl import tomlfile

MAPS_DIR = Path(__file__).resolve().parent / "maps"

Table = Literal["coils", "discrete_inputs", "holding_registers", "input_registers"]
TABLES: tuple[Table, ...] = ("coils", "discrete_inputs", "holding_registers", "input_registers")
BIT_TABLES: tuple[Table, ...] = ("coils", "discrete_inputs")
FieldType = Literal["bit", "u16", "u32", "text", "ring"]
_WIDTH: dict[str, int] = {"bit": 1, "u16": 1, "u32": 2}
_KEYS = {"address", "count", "type", "min", "max", "step", "default", "values", "slots", "record"}


class RegisterMapError(ValueError):
    """A map file that does not describe a usable register map."""


@dataclass(frozen=True)
class Field:
    """One named item of a map: a bit, a register, or a run of registers."""

    name: str
    table: Table
    address: int
    count: int = 1
    type: FieldType = "u16"
    min: int | None = None
    max: int | None = None
    step: int | None = None
    default: int = 0
    values: tuple[int, ...] | None = None
    slots: int | None = None  # ring: how many samples it holds
    record: int | None = None  # ring: registers per sample

    @property
    def end(self) -> int:
        """First address after the field."""
        return self.address + self.count

    def allows(self, value: int) -> bool:
        """Whether `value` is in the field's range (min/max/step or listed values)."""
        if self.values is not None:
            return value in self.values
        lo = 0 if self.min is None else self.min
        hi = 0xFFFF if self.max is None else self.max
        if not lo <= value <= hi:
            return False
        return self.step is None or (value - lo) % self.step == 0

    def describe_range(self) -> str:
        if self.values is not None:
            return "one of " + ", ".join(map(str, self.values))
        lo = 0 if self.min is None else self.min
        hi = 0xFFFF if self.max is None else self.max
        return f"{lo}..{hi}" + (f" in steps of {self.step}" if self.step else "")


@dataclass(frozen=True)
class RegisterMap:
    """The map of one device model. Station-relative maps (line I/O) give the
    addresses of station 0 and the strides in `layout`."""

    model: str
    fields: dict[str, Field]
    limits: dict[str, int] = field(default_factory=dict)
    layout: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Field:
        return self.fields[name]

    @cached_property
    def _tables(self) -> dict[str, list[Field]]:
        by_address = sorted(self.fields.values(), key=lambda f: f.address)
        return {t: [f for f in by_address if f.table == t] for t in TABLES}

    def table(self, table: Table) -> list[Field]:
        """The fields of one table, by address."""
        return list(self._tables[table])

    def span(self, table: Table) -> tuple[int, int] | None:
        """(first address, address after the last) of a table, or None if it is empty."""
        fs = self.table(table)
        return (fs[0].address, max(f.end for f in fs)) if fs else None

    def at(self, table: Table, address: int) -> Field | None:
        """The field covering `address` of `table` (station 0 for station maps)."""
        for f in self._tables[table]:
            if f.address <= address < f.end:
                return f
        return None

    def stride(self, table: Table) -> int:
        """Address step from one station to the next (0: not a station map)."""
        key = "bit_stride" if table in BIT_TABLES else "register_stride"
        return self.layout.get(key, 0)

    def station_address(self, name: str, station: int) -> int:
        """Address of field `name` for station `station`."""
        f = self.fields[name]
        return f.address + station * self.stride(f.table)


@cache
def load_map(model: str) -> RegisterMap:
    """The map of `model` from maps/<model>.toml (read once)."""
    path = MAPS_DIR / f"{model}.toml"
    try:
        raw = tomlfile.load(path)
    except tomlfile.TomlError as e:
        if e.missing:
            raise RegisterMapError(f"no register map for model {model!r} ({path})") from None
        raise RegisterMapError(f"{path}: {e}") from None
    return parse_map(raw, str(path))


def _table_of(raw: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RegisterMapError(f"{source}: {key}: must be a table")
    return value


def _whole(value: Any, where: str, *, none_ok: bool = True) -> int | None:
    """An integer key of the map (bounded: a map holds 16-bit addresses and values)."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**32) <= value < 2**32:
        raise RegisterMapError(f"{where}: must be a whole number, got {value!r:.40}")
    return value


def parse_map(raw: dict[str, Any], source: str = "map") -> RegisterMap:
    """Validate a map read from TOML; every error names the file and the key."""
    model = raw.get("model")
    if not isinstance(model, str):
        raise RegisterMapError(f"{source}: model: missing")
    fields: dict[str, Field] = {}
    for table in TABLES:
        for name, spec in _table_of(raw, table, source).items():
            where = f"{source}: {table}.{name}"
            if name in fields:
                raise RegisterMapError(f"{where}: name used twice")
            fields[name] = _field(name, table, spec, where)
        _no_overlap([f for f in fields.values() if f.table == table], source)
    return RegisterMap(
        model, fields, _numbers(raw, "limits", source), _numbers(raw, "layout", source)
    )


def _numbers(raw: dict[str, Any], key: str, source: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in _table_of(raw, key, source).items():
        n = _whole(v, f"{source}: {key}.{k}", none_ok=False)
        assert n is not None
        out[str(k)] = n
    return out


def _field(name: str, table: Table, spec: Any, where: str) -> Field:
    if not isinstance(spec, dict) or _whole(spec.get("address"), where) is None:
        raise RegisterMapError(f"{where}: needs an integer address")
    unknown = set(spec) - _KEYS
    if unknown:
        raise RegisterMapError(f"{where}: unknown key(s) {sorted(unknown)}")
    ftype = spec.get("type", "bit" if table in BIT_TABLES else "u16")
    if ftype not in ("bit", "u16", "u32", "text", "ring"):
        raise RegisterMapError(f"{where}: unknown type {ftype!r:.40}")
    if (table in BIT_TABLES) != (ftype == "bit"):
        raise RegisterMapError(f"{where}: type {ftype} does not fit table {table}")
    n = {k: _whole(spec.get(k), f"{where}.{k}") for k in ("count", "min", "max", "step")}
    n.update({k: _whole(spec.get(k), f"{where}.{k}") for k in ("default", "slots", "record")})
    count = n["count"] if n["count"] is not None else _WIDTH.get(ftype, 0)
    if count < 1:
        raise RegisterMapError(f"{where}: needs a count")
    if ftype == "u32" and count != 2:
        raise RegisterMapError(f"{where}: a u32 takes 2 registers")
    if ftype == "u16" and count != 1:
        raise RegisterMapError(f"{where}: a u16 takes 1 register")
    slots, record = n["slots"], n["record"]
    if ftype == "ring" and (not slots or not record or slots * record != count):
        raise RegisterMapError(f"{where}: a ring needs slots * record == count")
    if n["step"] is not None and n["step"] < 1:
        raise RegisterMapError(f"{where}.step: must be at least 1")
    values = spec.get("values")
    if values is not None and not isinstance(values, list):
        raise RegisterMapError(f"{where}.values: must be a list of whole numbers")
    f = Field(
        name=name,
        table=table,
        address=spec["address"],
        count=count,
        type=ftype,
        min=n["min"],
        max=n["max"],
        step=n["step"],
        default=n["default"] or 0,
        values=_values(values, f"{where}.values"),
        slots=slots,
        record=record,
    )
    if f.address < 0 or f.end > 0x10000:
        raise RegisterMapError(f"{where}: address out of 0..65535")
    if "default" in spec and not f.allows(f.default):
        raise RegisterMapError(f"{where}: default {f.default} outside {f.describe_range()}")
    return f


def _values(values: list[Any] | None, where: str) -> tuple[int, ...] | None:
    if values is None:
        return None
    out = tuple(_whole(v, where, none_ok=False) for v in values)
    return out  # type: ignore[return-value]  # none_ok=False: never None


def _no_overlap(fields: list[Field], source: str) -> None:
    fs = sorted(fields, key=lambda f: f.address)
    for a, b in itertools.pairwise(fs):
        if b.address < a.end:
            raise RegisterMapError(f"{source}: {a.table}.{a.name} and {b.name} overlap")


# -- codecs -----------------------------------------------------------------


def u32_from_registers(regs: list[int]) -> int:
    """A 32-bit value from two registers, high word first."""
    if len(regs) != 2:
        raise ValueError(f"a u32 takes 2 registers, got {len(regs)}")
    return (regs[0] << 16) | regs[1]


def u32_to_registers(value: int) -> list[int]:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"u32 out of range: {value}")
    return [value >> 16, value & 0xFFFF]


def text_to_bytes(text: str, n_bytes: int) -> bytes:
    """`text` as UTF-8 in at most `n_bytes`, cut only between characters,
    NUL-padded to exactly `n_bytes`."""
    out = bytearray()
    for ch in text:
        b = ch.encode("utf-8")
        if len(out) + len(b) > n_bytes:
            break
        out += b
    return bytes(out).ljust(n_bytes, b"\0")


def text_to_registers(text: str, n_registers: int) -> list[int]:
    """`text` for a text field of `n_registers` registers (two bytes each)."""
    raw = text_to_bytes(text, 2 * n_registers)
    return [(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)]


def registers_to_bytes(regs: list[int]) -> bytes:
    return b"".join(int(r).to_bytes(2, "big") for r in regs)


def text_from_registers(regs: list[int]) -> str:
    """The text of a text field: up to the first NUL. Bytes that are not UTF-8
    (a field written by something else) show as U+FFFD rather than failing."""
    raw = registers_to_bytes(regs).split(b"\0", 1)[0]
    return raw.decode("utf-8", errors="replace")
