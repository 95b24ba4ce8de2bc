"""`linectl diag modbus read|write`: one Modbus request, through the daemon's `ModbusBus`.

The device is a config entry (`DEVICE --config FILE`) or flags (`--host/--port`
for TCP, `--device/--baud` for RTU, `--unit`). Registers are shown in the
format asked for (u16, i16, u32 and f32 high word first, text as devices.md
packs it); with a model (`--model`, or the config's) each is named from the
model's register map and coded values are named too (STATE 0 is IDLE).
`--format auto`, the default with a model, reads each field by its type in
the map. An exception reply is explained in words and exits 1.
"""

from __future__ import annotations

import struct
from typing import Any

from linectl.cli import CliError
from linectl.config import DeviceConfig
from linectl.diag.args import TABLES
from linectl.diag.explain import ModbusRequest, Where, explain
from linectl.diag.models import MODBUS_MODELS, field_at, meaning
from linectl.diag.output import print_json, print_table
from linectl.diag.target import (
    EXIT_FAILED,
    EXIT_USAGE,
    adhoc_device,
    device_from_config,
    run,
    where,
    with_timeout,
)
from linectl.drivers.errors import DeviceError
from linectl.drivers.health import DeviceHealth
from linectl.drivers.modbus import ModbusBus
from linectl.drivers.regmap import (
    Table,
    registers_to_bytes,
    text_from_registers,
    text_to_registers,
    u32_from_registers,
)

WIDTH = {"u16": 1, "i16": 1, "u32": 2, "f32": 2}


def target(args: Any) -> tuple[DeviceConfig, bool]:
    """The device of the command line, and whether it came from the config."""
    if args.device_id:
        _, placed = device_from_config(args.config, args.device_id)
        cfg = with_timeout(placed.cfg, args.timeout_ms)
        if cfg.model not in MODBUS_MODELS:
            raise CliError(f"{cfg.id} is a {cfg.model}, not a Modbus device", EXIT_USAGE)
        if args.unit is not None:
            cfg = cfg.model_copy(update={"unit": args.unit})
        return cfg, True
    model = args.model or "rbt-modbus"  # only picks the transport kind here
    if model not in MODBUS_MODELS:
        raise CliError(f"--model must be one of {', '.join(MODBUS_MODELS)}", EXIT_USAGE)
    cfg = adhoc_device(
        model=model,
        host=args.host,
        port=args.port,
        device=args.device,
        baud=args.baud,
        parity=args.parity,
        stopbits=args.stopbits,
        unit=1 if args.unit is None else args.unit,
        timeout_ms=args.timeout_ms or 1000.0,
    )
    return cfg, False


def _model(args: Any, cfg: DeviceConfig, from_config: bool) -> str | None:
    return cfg.model if from_config else args.model


def _where(cfg: DeviceConfig, from_config: bool, model: str | None) -> Where:
    w = where(cfg, id_known=from_config)
    return Where(w.name, w.path, w.unit, w.timeout_s, model)


def decode(
    table: Table, address: int, values: list[int] | list[bool], fmt: str, model: str | None
) -> list[dict[str, Any]]:
    """One entry per value as the format reads them: address, name, value, meaning."""
    if table in ("coils", "discrete_inputs"):
        return [_entry(model, table, address + i, int(v), [int(v)]) for i, v in enumerate(values)]
    regs = [int(v) for v in values]
    if fmt == "text":
        return [_entry(model, table, address, text_from_registers(regs), regs)]
    if fmt == "auto":
        return _by_map(table, address, regs, model)
    n = WIDTH[fmt]
    out = []
    for i in range(0, len(regs), n):
        raw = regs[i : i + n]
        value: int | float
        if fmt == "u16":
            value = raw[0]
        elif fmt == "i16":
            value = raw[0] - 0x10000 if raw[0] & 0x8000 else raw[0]
        elif fmt == "u32":
            value = u32_from_registers(raw)
        else:
            value = struct.unpack(">f", registers_to_bytes(raw))[0]
        out.append(_entry(model, table, address + i, value, raw))
    return out


def _by_map(table: Table, address: int, regs: list[int], model: str | None) -> list[dict[str, Any]]:
    """Each field of the map read by its type (a u32 or a text read whole); anything
    else, and a field only partly read, one register at a time as u16."""
    out = []
    i = 0
    while i < len(regs):
        a = address + i
        loc = field_at(model, table, a)
        if loc and loc.field.type in ("u32", "text") and a == loc.start:
            n = loc.field.count
            if i + n <= len(regs):
                raw = regs[i : i + n]
                value: int | str = (
                    u32_from_registers(raw) if loc.field.type == "u32" else text_from_registers(raw)
                )
                out.append(_entry(model, table, a, value, raw))
                i += n
                continue
        out.append(_entry(model, table, a, regs[i], [regs[i]]))
        i += 1
    return out


def _entry(
    model: str | None, table: Table, address: int, value: Any, raw: list[int]
) -> dict[str, Any]:
    e: dict[str, Any] = {"address": address, "value": value, "raw": raw}
    loc = field_at(model, table, address)
    if loc:
        name = loc.field.name
        whole = address == loc.start and len(raw) == loc.field.count
        if loc.field.count > 1 and not whole:
            name += f"[{address - loc.start}]"
        if loc.station is not None:
            name += f" (station {loc.station})"
        e["name"] = name
        if isinstance(value, int):
            m = meaning(model, loc.field.name, value)
            if m is not None:
                e["meaning"] = m
    return e


def _show(entries: list[dict[str, Any]], as_json: bool, bits: bool = False) -> None:
    if as_json:
        print_json(entries)
        return
    named = any("name" in e for e in entries)
    headers = ["address", *(["name"] if named else []), "value", "raw"]
    rows = []
    for e in entries:
        value = e["value"]
        if "meaning" in e:
            value = f"{value} {e['meaning']}"
        raw = " ".join(str(r) if bits else f"{r:04X}" for r in e["raw"])
        rows.append([e["address"], *([e.get("name")] if named else []), value, raw])
    print_table(headers, rows)


async def _read(
    cfg: DeviceConfig, table: Table, address: int, count: int
) -> list[int] | list[bool]:
    bus = ModbusBus(cfg.transport, cfg.timeout_s)  # type: ignore[arg-type]
    bus.attach(cfg.unit, DeviceHealth(cfg.id))
    try:
        if table == "coils":
            return await bus.read_coils(cfg.unit, address, count)
        if table == "discrete_inputs":
            return await bus.read_discrete_inputs(cfg.unit, address, count)
        if table == "holding_registers":
            return await bus.read_holding_registers(cfg.unit, address, count)
        return await bus.read_input_registers(cfg.unit, address, count)
    finally:
        await bus.close()


def read_cli(args: Any) -> int:
    cfg, from_config = target(args)
    model = _model(args, cfg, from_config)
    table: Table = TABLES[args.table]  # type: ignore[assignment]
    if not 1 <= args.count <= 2000:
        raise CliError("--count must be 1..2000 (2000 bits, 125 registers a request)", EXIT_USAGE)
    fmt = args.format or ("auto" if model else "u16")
    if table.endswith("registers") and args.count % WIDTH.get(fmt, 1):
        raise CliError(f"--format {fmt} takes 2 registers a value: give an even --count", 2)
    try:
        values = run(_read(cfg, table, args.address, args.count), args.verbose)
    except DeviceError as e:
        req = ModbusRequest(table, args.address, args.count)
        raise CliError(explain(e, _where(cfg, from_config, model), req), EXIT_FAILED) from None
    entries = decode(table, args.address, values, fmt, model)
    _show(entries, args.json, bits=table in ("coils", "discrete_inputs"))
    return 0


def encode(values: list[str], fmt: str, table: Table) -> list[int]:
    """The registers (or bits) of the values typed on the command line."""
    try:
        if table == "coils":
            return [int(v, 0) for v in values]
        if fmt == "text":
            raw = " ".join(values)
            return text_to_registers(raw, (len(raw.encode()) + 1) // 2)
        regs: list[int] = []
        for v in values:
            if fmt == "f32":
                regs += list(struct.unpack(">HH", struct.pack(">f", float(v))))
            elif fmt == "u32":
                n = int(v, 0)
                regs += [n >> 16 & 0xFFFF, n & 0xFFFF]
            else:
                n = int(v, 0)
                regs.append(n & 0xFFFF if fmt == "i16" else n)
        return regs
    except (ValueError, struct.error) as e:
        raise CliError(f"--value: {e}", EXIT_USAGE) from None


async def _write(cfg: DeviceConfig, table: Table, address: int, regs: list[int]) -> None:
    bus = ModbusBus(cfg.transport, cfg.timeout_s)  # type: ignore[arg-type]
    bus.attach(cfg.unit, DeviceHealth(cfg.id))
    try:
        if table == "coils":
            await bus.write_coil(cfg.unit, address, bool(regs[0]))
        elif len(regs) == 1:
            await bus.write_register(cfg.unit, address, regs[0])
        else:
            await bus.write_registers(cfg.unit, address, regs)
    finally:
        await bus.close()


def write_cli(args: Any) -> int:
    cfg, from_config = target(args)
    model = _model(args, cfg, from_config)
    table: Table = TABLES[args.table]  # type: ignore[assignment]
    if table not in ("coils", "holding_registers"):
        raise CliError("only coils and holding registers can be written", EXIT_USAGE)
    fmt = args.format if args.format not in (None, "auto") else "u16"
    regs = encode(args.value, fmt, table)
    if table == "coils" and (len(regs) != 1 or regs[0] not in (0, 1)):
        raise CliError("write one coil at a time: --value 0 or 1", EXIT_USAGE)
    if any(not 0 <= r <= 0xFFFF for r in regs):
        raise CliError(f"--value out of range for --format {fmt}", EXIT_USAGE)
    try:
        run(_write(cfg, table, args.address, regs), args.verbose)
    except DeviceError as e:
        req = ModbusRequest(table, args.address, len(regs), write=True)
        raise CliError(explain(e, _where(cfg, from_config, model), req), EXIT_FAILED) from None
    entries = decode(table, args.address, regs, fmt if fmt != "u16" or not model else "auto", model)
    print("wrote:")
    _show(entries, False, bits=table == "coils")
    return 0
