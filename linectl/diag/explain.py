"""Device errors in the words of a technician, with the fix where there is one.

The drivers raise `DeviceError`s whose `why` says what went wrong at the OS
level (refused, busy, permission, ...); this module turns them into one line
that names the device and says what to check: port busy, permission denied
on /dev/ttyUSB0 (and the dialout fix), connection refused, no answer in N
ms, wrong unit id, and Modbus exception codes in words ("02 illegal data
address: this device has no input register 9").
"""

from __future__ import annotations

from dataclasses import dataclass

from linectl.drivers.errors import (
    MODBUS_EXCEPTIONS,
    DeviceError,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
    ModbusExceptionResponse,
    RingOverrun,
)
from linectl.drivers.framing import BadChecksum, FrameError
from linectl.drivers.regmap import RegisterMap, RegisterMapError, Table, load_map

DIALOUT_FIX = (
    "add the user to the dialout group: sudo usermod -aG dialout $USER, then log out and in again"
)
TABLE_WORDS: dict[str, tuple[str, str]] = {
    "coils": ("coil", "coils"),
    "discrete_inputs": ("discrete input", "discrete inputs"),
    "holding_registers": ("holding register", "holding registers"),
    "input_registers": ("input register", "input registers"),
}


@dataclass(frozen=True)
class Where:
    """What an error message names: the device and how it is reached."""

    name: str  # "rbt-L1 (tcp 127.0.0.1:15020 unit 1)", or just "127.0.0.1:15020"
    path: str | None = None  # serial device path, for port errors
    unit: int | None = None  # Modbus unit id asked for
    timeout_s: float = 1.0
    model: str | None = None


@dataclass(frozen=True)
class ModbusRequest:
    """The request a Modbus exception answered."""

    table: Table
    address: int
    count: int = 1
    write: bool = False


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


def _map(model: str | None) -> RegisterMap | None:
    if model is None:
        return None
    try:
        return load_map(model)
    except RegisterMapError:
        return None


def missing_address(model: str | None, req: ModbusRequest) -> int | None:
    """The first address of the request that the model's map does not define
    (station maps: for any station), or None when the map is unknown or has them all."""
    from linectl.diag.models import field_at

    if _map(model) is None:
        return None
    for a in range(req.address, req.address + req.count):
        if field_at(model, req.table, a) is None:
            return a
    return None


def explain_exception(code: int, req: ModbusRequest | None, where: Where) -> str:
    """A Modbus exception reply in words, with what it means for this request."""
    head = f"{code:02X} {MODBUS_EXCEPTIONS.get(code, 'unknown exception code')}"
    one, many = TABLE_WORDS[req.table] if req else ("address", "addresses")
    if code == 0x01:
        what = many if req else "this kind of request"
        return f"{head}: {where.name} does not serve {what} (a request it does not support)"
    if code == 0x02 and req is not None:
        gap = missing_address(where.model, req)
        if gap is not None:
            return f"{head}: this device has no {one} {gap} ({where.model} map)"
        if req.count == 1:
            return f"{head}: this device has no {one} {req.address}"
        last = req.address + req.count - 1
        return f"{head}: this device lacks at least one of {many} {req.address}..{last}"
    if code == 0x03:
        rng = ""
        m = _map(where.model)
        f = m.at(req.table, req.address) if (m and req) else None
        if f is not None and f.type == "u16":
            rng = f" ({f.name} takes {f.describe_range()})"
        return f"{head}: the device refused the value or the count as out of its range{rng}"
    if code == 0x04:
        return f"{head}: the device failed while carrying out the request (an internal fault)"
    if code == 0x05:
        return f"{head}: taken, but it takes long; ask again later"
    if code == 0x06:
        return f"{head}: the device is busy with a long command; try again in a moment"
    if code == 0x0A:
        return f"{head}: the gateway has no path to unit {where.unit}"
    if code == 0x0B:
        return (
            f"{head}: nothing answers as unit {where.unit} there: "
            "a wrong unit id, or that device is off"
        )
    return head


def explain(e: BaseException, where: Where, req: ModbusRequest | None = None) -> str:
    """One line for `e`, naming the device and what to check."""
    if isinstance(e, ModbusExceptionResponse):
        return f"{where.name}: Modbus exception {explain_exception(e.code, req, where)}"
    if isinstance(e, DeviceTimeout):
        unit = f" (unit {where.unit})" if where.unit is not None else ""
        hint = "device off, wrong unit id, wrong baud rate or parity, or a loose cable"
        if where.unit is None:
            hint = "instrument off, wrong baud rate, wrong model, or a loose cable"
        return f"{where.name}: no answer in {_ms(where.timeout_s)}{unit}: {hint}"
    if isinstance(e, DeviceUnreachable):
        return _unreachable(e, where)
    if isinstance(e, RingOverrun):
        return f"{where.name}: {e}"
    if isinstance(e, DeviceProtocolError):
        cause = e.__cause__
        if isinstance(cause, BadChecksum):
            return (
                f"{where.name}: reply with a bad checksum, discarded ({cause}): "
                "noise on the line, a wrong baud rate, or another instrument model"
            )
        if isinstance(cause, FrameError):
            return (
                f"{where.name}: garbled reply, discarded ({cause}): "
                "noise on the line, a wrong baud rate, or another instrument model"
            )
        return f"{where.name}: answered, but not as its contract allows: {_strip(e, where)}"
    if isinstance(e, DeviceError):
        return f"{where.name}: {_strip(e, where)}"
    return f"{where.name}: {e}"


def _strip(e: BaseException, where: Where) -> str:
    """The driver's message without the device prefix it already carries."""
    text = str(e)
    head, sep, rest = text.partition(": ")
    return rest if sep and (head in where.name or where.name.startswith(head)) else text


def _unreachable(e: DeviceUnreachable, where: Where) -> str:
    path = where.path or where.name
    why = e.why
    if why == "refused":
        return (
            f"{where.name}: connection refused: nothing listens there "
            "(device off, wrong address or port, or the simulator not running)"
        )
    if why == "no_route":
        return f"{where.name}: no route to the host: check the cable, the switch and the IP address"
    if why == "unknown_host":
        return f"{where.name}: unknown host name: check the address in the config"
    if why == "timeout":
        return (
            f"{where.name}: no answer in {_ms(where.timeout_s)}: device off, wrong address, "
            "or a firewall dropping the connection"
        )
    if why == "permission":
        return f"permission denied on {path}: {DIALOUT_FIX}"
    if why == "busy":
        return (
            f"port {path} is busy: another program holds it (the linectl daemon? "
            "stop it with `systemctl stop linectl`, or ask it with `linectl diag stats`)"
        )
    if why == "no_port":
        return f"no such serial port {path}: adapter unplugged, or another name (see `linectl diag ports`)"
    if why == "io":
        return f"input/output error on {path}: the adapter may have been unplugged"
    if why == "lost":
        return f"{where.name}: the link was lost during the request: {_strip(e, where)}"
    return f"{where.name}: not reachable: {_strip(e, where)}"
