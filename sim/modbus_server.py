"""Serve emulated Modbus devices over TCP or RTU, as real instruments answer.

The emulators build pymodbus `SimDevice`s; this module puts them on the wire
with pymodbus's own servers and closes what it opened. It completes two
checks that pymodbus's simulator leaves out, because devices.md relies on
them and the daemon must meet them:
- bit blocks: SimRuntime checks coils and discrete inputs per 16-bit word
  and hands the action the word count, not the bit count, so a read of
  inputs 3..9 of a device that defines 0..4 would pass. Bit requests are
  checked here against the bits the device's SimData define: exception 02.
- unit ids: a request for a unit the server does not emulate gets no answer
  on RTU (another slave on the line may own it) and exception 0B (gateway
  target failed to respond) on TCP, not a "device failure" reply.
Both checks run in request classes given to the server through its
`custom_pdu` hook, so everything else stays pymodbus's code path. The same
gate plays injected faults (sim/faults.py): given a `gate(unit)` that names
the unit's trouble now, a request gets no answer ("silent") or exception
04 or 06 instead of its reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadDiscreteInputsRequest,
    WriteMultipleCoilsRequest,
    WriteSingleCoilRequest,
)
from pymodbus.pdu.register_message import (
    MaskWriteRegisterRequest,
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    ReadWriteMultipleRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimDevice

Ranges = list[tuple[int, int]]
Gate = Callable[[int], str | None]  # unit id -> "silent", "04", "06" or None (sim/faults.py)
_GATE_CODES = {"04": ExcCodes.DEVICE_FAILURE, "06": ExcCodes.DEVICE_BUSY}


class _Silent(NoSuchIdException):
    """Raised to leave a request unanswered: the server ignores it like a missing unit."""


_BIT_REQUESTS: dict[type[ModbusPDU], int] = {
    ReadCoilsRequest: 0,  # index into SimDevice.simdata: coils
    WriteSingleCoilRequest: 0,
    WriteMultipleCoilsRequest: 0,
    ReadDiscreteInputsRequest: 1,  # discrete inputs
}
_REGISTER_REQUESTS: tuple[type[ModbusPDU], ...] = (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    WriteSingleRegisterRequest,
    WriteMultipleRegistersRequest,
    ReadWriteMultipleRegistersRequest,
    MaskWriteRegisterRequest,
)


def _bit_ranges(device: SimDevice) -> tuple[Ranges, Ranges]:
    """The bit addresses a device defines: (coils, discrete inputs), merged runs."""
    if not isinstance(device.simdata, tuple):
        raise TypeError(f"device {device.id}: serve separate blocks (a 4-tuple of SimData lists)")
    out: list[Ranges] = []
    for block in device.simdata[:2]:
        runs = sorted((d.address, d.address + len(d.build_registers(True))) for d in block)
        merged: Ranges = []
        for lo, hi in runs:
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        out.append(merged)
    return out[0], out[1]


def _request_classes(
    devices: Sequence[SimDevice], tcp: bool, gate: Gate | None = None
) -> list[type[ModbusPDU]]:
    ranges = {d.id: _bit_ranges(d) for d in devices}

    def unit_ranges(device_id: int) -> tuple[Ranges, Ranges]:
        found = ranges.get(device_id, ranges.get(0))
        if found is None:
            raise NoSuchIdException(f"no emulated device {device_id}")
        return found

    def refusal(pdu: ModbusPDU, device_id: int) -> ModbusPDU | None:
        """Exception 0B for a unit nobody emulates behind a TCP gateway (an RTU
        line stays silent), else the injected fault's answer, if any."""
        if device_id not in ranges and 0 not in ranges:
            if tcp:
                return ExceptionResponse(pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
            raise NoSuchIdException(f"no emulated device {device_id}")
        trouble = gate(device_id) if gate is not None else None
        if trouble == "silent":
            raise _Silent(f"unit {device_id} is silent (injected fault)")
        if trouble in _GATE_CODES:
            return ExceptionResponse(pdu.function_code, _GATE_CODES[trouble])
        return None

    classes: list[type[ModbusPDU]] = []
    for base, block in _BIT_REQUESTS.items():

        class CheckedBits(base):  # type: ignore[valid-type, misc]
            _block = block

            async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
                if (refused := refusal(self, device_id)) is not None:
                    return refused
                first = self.address
                n = 1 if isinstance(self, WriteSingleCoilRequest) else self.count
                defined = unit_ranges(device_id)[self._block]
                if not any(lo <= first and first + n <= hi for lo, hi in defined):
                    return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_ADDRESS)
                return await super().datastore_update(context, device_id)

        CheckedBits.__name__ = CheckedBits.__qualname__ = base.__name__
        classes.append(CheckedBits)
    for base in _REGISTER_REQUESTS:

        class CheckedUnit(base):  # type: ignore[valid-type, misc]
            async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
                if (refused := refusal(self, device_id)) is not None:
                    return refused
                return await super().datastore_update(context, device_id)

        CheckedUnit.__name__ = CheckedUnit.__qualname__ = base.__name__
        classes.append(CheckedUnit)
    return classes


def _as_list(devices: SimDevice | Sequence[SimDevice]) -> list[SimDevice]:
    devs = [devices] if isinstance(devices, SimDevice) else list(devices)
    if not devs:
        raise ValueError("no device to serve")
    return devs


class ServerHandle:
    """A running server. `port` is the bound TCP port (useful with port 0),
    `path` the serial device of an RTU server."""

    def __init__(
        self, server: ModbusTcpServer | ModbusSerialServer, port: int = 0, path: str = ""
    ) -> None:
        self.server = server
        self.port = port
        self.path = path
        self._closed = False

    def drop_connections(self) -> int:
        """Drop every client connection now, the server still listening (a
        connection lost mid-run); returns how many were dropped."""
        conns = list(self.server.active_connections.values())
        for c in conns:
            if c.transport is not None:
                c.transport.abort()
        return len(conns)

    async def close(self) -> None:
        """Stop listening and drop every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self.server.shutdown()
        # Let the transports' close callbacks run before the caller goes on.
        await asyncio.sleep(0)

    async def __aenter__(self) -> ServerHandle:
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve_tcp(
    devices: SimDevice | Sequence[SimDevice],
    host: str = "127.0.0.1",
    port: int = 0,
    gate: Gate | None = None,
) -> ServerHandle:
    """Serve `devices` (by unit id) on host:port; port 0 takes a free port."""
    devs = _as_list(devices)
    server = ModbusTcpServer(
        devs,
        address=(host, port),
        # Missing units are answered 0B by the gate; what it raises is a silent unit.
        ignore_missing_devices=True,
        custom_pdu=_request_classes(devs, tcp=True, gate=gate),
    )
    try:
        await server.serve_forever(background=True)
    except RuntimeError:
        await server.shutdown()
        raise OSError(f"cannot listen on {host}:{port}") from None
    sockets = getattr(server.transport, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return ServerHandle(server, port=bound)


async def serve_rtu(
    devices: SimDevice | Sequence[SimDevice],
    device_path: str,
    baudrate: int = 19200,
    gate: Gate | None = None,
) -> ServerHandle:
    """Serve `devices` as RTU slaves on the serial device `device_path`
    (typically one end of a sim.pty.NullModem)."""
    devs = _as_list(devices)
    server = ModbusSerialServer(
        devs,
        port=device_path,
        baudrate=baudrate,
        ignore_missing_devices=True,
        custom_pdu=_request_classes(devs, tcp=False, gate=gate),
    )
    try:
        await server.serve_forever(background=True)
    except RuntimeError:
        await server.shutdown()
        raise OSError(f"cannot open {device_path} for Modbus RTU") from None
    return ServerHandle(server, path=device_path)
