"""One physical Modbus bus: a TCP endpoint, or an RTU serial line shared by units.

`ModbusBus` owns the pymodbus client of the bus and the one lock that makes a
request's whole round trip exclusive, so two device drivers (or two tasks of
one driver) never interleave frames. On RTU it also keeps the silent
interval between frames.

Failures are ours to handle, not pymodbus's: its client is made with
`reconnect_delay=0` (no reconnect task of its own) and a response timeout
longer than ours, and every request runs under our own timeout in real
seconds. Then:
- a bus that cannot be opened (connection refused, serial port missing) is
  down: requests fail at once with `DeviceUnreachable` until the backoff
  (exponential, capped, jittered) has passed; the next request after it tries
  to reconnect;
- a unit that does not answer gets `DeviceTimeout` once and then fails fast
  with `DeviceUnreachable` during its own backoff, so a dead instrument on a
  shared RS-485 line does not eat the bus time of the others;
- a Modbus exception reply is `ModbusExceptionResponse`: the device answered,
  so it counts as up;
- a reply pymodbus cannot decode, or one of another function code than the
  request's, is `DeviceProtocolError` at once: never used, and never the
  traceback and dropped connection that pymodbus's own handling makes of it.
Each failure is reported to the `DeviceHealth` attached for the requesting
unit, which logs once down and once back; pymodbus's own "Failed to connect"
warning, repeated on every attempt, is filtered out for the same reason.
Every request also lands in that unit's `DeviceStats` (answered with its
wire latency, or failed by kind), and every reopening of the bus counts as a
reconnect of each unit on it.

pymodbus keeps the OS error of a failed connect to itself, so after one the
bus asks the OS once more (a plain TCP connect, or a look at the device
node) to say why in words: connection refused, no route to host, no such
serial port, permission denied.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from linectl.backoff import Backoff
from linectl.config import RtuTransport, TcpTransport
from linectl.drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
    ModbusExceptionResponse,
    os_error_words,
)
from linectl.drivers.health import DeviceHealth

log = logging.getLogger(__name__)

ModbusClient = AsyncModbusTcpClient | AsyncModbusSerialClient
BusKey = tuple[str, str, int]

# After this many timeouts in a row a TCP connection is taken as half-open and
# reopened (a device that rebooted behind a switch never sends a RST).
TCP_TIMEOUTS_BEFORE_RECONNECT = 3


class _QuietReconnectNoise(logging.Filter):
    """Drop pymodbus's per-attempt connect warning (and the "Repeating...."
    that pymodbus puts in place of its repeats): the bus reports the outage
    once through DeviceHealth instead."""

    def __init__(self) -> None:
        super().__init__()
        self._dropped_last = False

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg == "Repeating....":
            return not self._dropped_last
        self._dropped_last = msg.startswith("Failed to connect")
        return not self._dropped_last


_filter_installed = False


def _install_pymodbus_filter() -> None:
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("pymodbus.logging").addFilter(_QuietReconnectNoise())
        _filter_installed = True


class _Retry:
    """A backoff that also knows when its current wait ends, and why it began."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.delays = Backoff(min_s, max_s)
        self.retry_at = 0.0
        self.reason = ""
        self.why: str | None = None

    def failed(self, now: float, reason: str, why: str | None = None) -> float:
        delay = self.delays.next()
        self.retry_at = now + delay
        self.reason = reason
        self.why = why
        return delay

    def waiting(self, now: float) -> bool:
        return self.delays.failures > 0 and now < self.retry_at

    def reset(self) -> None:
        self.delays.reset()
        self.retry_at = 0.0
        self.reason = ""


def _fail_in_flight(client: ModbusClient, why: str) -> None:
    """Fail the request waiting for a reply at once: the link it was sent on
    is gone, so waiting out its timeout would only stall the bus."""
    fut = client.ctx.response_future
    if not fut.done():
        fut.set_exception(ConnectionException(why))


def _guard_decoding(client: ModbusClient) -> None:
    """Fail the waiting request when a reply cannot be decoded.

    pymodbus decodes replies inside the transport's data callback and raises
    there when it cannot: asyncio then logs a traceback and closes a TCP
    connection ("Fatal error: protocol.data_received() call failed"), an RTU
    line keeps the bytes and the request waits out its timeout. One garbled
    reply is a protocol error of that request, nothing more."""
    framer = client.ctx.framer
    decode = framer.handleFrame

    def guarded(data: bytes, exp_devid: int, exp_tid: int) -> tuple[int, ModbusPDU | None]:
        try:
            return decode(data, exp_devid, exp_tid)
        except Exception as e:  # pymodbus's decoders raise more than ModbusException
            fut = client.ctx.response_future
            if not fut.done():
                fut.set_exception(ModbusIOException(f"undecodable reply {data[:16].hex(' ')}: {e}"))
            return len(data), None  # the bytes are used up: dropped

    framer.handleFrame = guarded  # type: ignore[method-assign]


async def _why_not_connected(
    transport: TcpTransport | RtuTransport, timeout_s: float
) -> tuple[str | None, str]:
    """(why, words) when connect() failed: pymodbus keeps the OS error to itself.
    A refused or unroutable TCP connect fails again at once; a stat of a local
    device path is as quick as the blocking open pyserial does anyway."""
    if isinstance(transport, TcpTransport):
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(transport.host, transport.port)
        except TimeoutError:
            return "timeout", f"connect timed out after {timeout_s:g} s"
        except OSError as e:
            return os_error_words(e)
        writer.close()  # it took this one: the failure came and went
        return None, "cannot connect"
    return _serial_node_problem(transport.device)


def _serial_node_problem(path: str) -> tuple[str | None, str]:
    if not os.path.exists(path):
        return "no_port", "no such serial port"
    if not os.access(path, os.R_OK | os.W_OK):
        return "permission", "permission denied on the serial port"
    return None, "cannot open the serial port"


def bus_key(transport: TcpTransport | RtuTransport) -> BusKey:
    """What makes two transports the same physical bus."""
    if isinstance(transport, TcpTransport):
        return ("tcp", transport.host, transport.port)
    return ("rtu", os.path.abspath(transport.device), 0)


class BusRegistry:
    """The open buses of a daemon, so devices on one RTU port (or behind one
    TCP gateway) share one bus and its lock."""

    def __init__(self) -> None:
        self._buses: dict[BusKey, ModbusBus] = {}

    def get(
        self, transport: TcpTransport | RtuTransport, timeout_s: float, **kwargs: Any
    ) -> ModbusBus:
        key = bus_key(transport)
        bus = self._buses.get(key)
        if bus is not None and bus.loop_closed:
            # Left open by a daemon (or test) whose event loop is gone: useless now.
            bus = None
        if bus is None:
            bus = ModbusBus(transport, timeout_s, registry=self, **kwargs)
            self._buses[key] = bus
            return bus
        if bus.transport != transport:
            raise ValueError(
                f"{bus.name} is configured twice with different settings: "
                f"{bus.transport.model_dump()} and {transport.model_dump()}"
            )
        # The slowest device on a shared line sets the timeout of the line.
        bus.timeout_s = max(bus.timeout_s, timeout_s)
        return bus

    def _forget(self, bus: ModbusBus) -> None:
        if self._buses.get(bus.key) is bus:
            del self._buses[bus.key]

    def buses(self) -> list[ModbusBus]:
        return list(self._buses.values())

    async def close_all(self) -> None:
        for bus in list(self._buses.values()):
            await bus.close()


class ModbusBus:
    """One Modbus bus with one lock. All methods take the unit id of the device
    and raise only `DeviceError` subclasses for device trouble."""

    default_registry: ClassVar[BusRegistry] = BusRegistry()

    def __init__(
        self,
        transport: TcpTransport | RtuTransport,
        timeout_s: float,
        *,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        registry: BusRegistry | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout must be > 0, got {timeout_s}")
        _install_pymodbus_filter()
        self.transport = transport
        self.key = bus_key(transport)
        self.timeout_s = timeout_s
        self.is_rtu = isinstance(transport, RtuTransport)
        if isinstance(transport, TcpTransport):
            self.name = f"modbus-tcp {transport.host}:{transport.port}"
            self.frame_gap_s = 0.0
        else:
            self.name = f"modbus-rtu {transport.device}"
            # 3.5 character times of 11 bits; the spec's floor of 1.75 ms above 19200 Bd.
            self.frame_gap_s = max(0.00175, 3.5 * 11 / transport.baudrate)
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._registry = registry
        self._lock = asyncio.Lock()
        self._client: ModbusClient | None = None
        self._bus_backoff = _Retry(backoff_min_s, backoff_max_s)
        self._unit_backoff: dict[int, _Retry] = {}
        self._health: dict[int, DeviceHealth] = {}
        self._quiet_until = 0.0
        self._timeouts_in_row = 0
        self._connected_before = False
        self._in_flight = False  # a request is waiting for its reply
        self._expiring: asyncio.Task[Any] | None = None  # cancelled by its request's timer
        self._watched: asyncio.Task[Any] | None = None  # waiting for a reply, watched
        self._deadline = 0.0  # of the watched request, loop time
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_loop: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @classmethod
    def for_transport(
        cls,
        transport: TcpTransport | RtuTransport,
        timeout_s: float,
        *,
        registry: BusRegistry | None = None,
        **kwargs: Any,
    ) -> ModbusBus:
        """The bus of `transport`, shared with every device already on it."""
        return (registry or cls.default_registry).get(transport, timeout_s, **kwargs)

    # -- devices ---------------------------------------------------------------

    def attach(self, unit: int, health: DeviceHealth) -> None:
        """Report the failures of requests to `unit` to `health`."""
        other = self._health.get(unit)
        if other is not None and other is not health:
            raise ValueError(
                f"{self.name}: unit {unit} is used by {other.device_id} and {health.device_id}"
            )
        self._health[unit] = health

    def detach(self, unit: int) -> None:
        self._health.pop(unit, None)

    # -- connection ------------------------------------------------------------

    @property
    def loop_closed(self) -> bool:
        """The event loop this bus ran on is closed (its client and lock are dead)."""
        return self._loop is not None and self._loop.is_closed()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        """Open the bus now (requests also open it on demand). Raises
        DeviceUnreachable if it cannot, or if it is in its backoff."""
        self._loop = asyncio.get_running_loop()
        async with self._lock:
            await self._ensure_connected()

    async def close(self) -> None:
        """Close the bus for good; later requests raise DeviceUnreachable."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._drop_client()
        if self._registry is not None:
            self._registry._forget(self)

    def _make_client(self) -> ModbusClient:
        # pymodbus's timeout covers connect and response; ours is shorter, so
        # its own retry/disconnect bookkeeping never fires first.
        lib_timeout = self.timeout_s * 3 + 1.0
        t = self.transport
        client: ModbusClient
        if isinstance(t, TcpTransport):
            client = AsyncModbusTcpClient(
                t.host,
                port=t.port,
                name=self.name,
                reconnect_delay=0,
                timeout=lib_timeout,
                retries=0,
                trace_connect=self._on_trace_connect,
            )
        else:
            client = AsyncModbusSerialClient(
                t.device,
                baudrate=t.baudrate,
                bytesize=t.bytesize,
                parity=t.parity,
                stopbits=t.stopbits,
                name=self.name,
                reconnect_delay=0,
                timeout=lib_timeout,
                retries=0,
                trace_connect=self._on_trace_connect,
            )
        _guard_decoding(client)
        return client

    def _on_trace_connect(self, connected: bool) -> None:
        if not connected and self._client is not None and self._in_flight:
            _fail_in_flight(self._client, "connection lost")

    def _drop_client(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()
            if self._in_flight:
                _fail_in_flight(client, "bus closed")

    async def _ensure_connected(self) -> None:
        if self._closed:
            raise DeviceUnreachable(f"{self.name}: bus closed")
        if self._client is not None:
            if self._client.connected:
                return
            # Lost since the last request: try again at once, then back off.
            self._drop_client()
        now = asyncio.get_running_loop().time()
        if self._bus_backoff.waiting(now):
            left = self._bus_backoff.retry_at - now
            raise DeviceUnreachable(
                f"{self.name}: {self._bus_backoff.reason}; next attempt in {left:.1f} s",
                why=self._bus_backoff.why,
            )
        client = self._make_client()
        try:
            async with asyncio.timeout(self.timeout_s):
                ok = await client.connect()
            why, reason = (
                (None, "") if ok else await _why_not_connected(self.transport, self.timeout_s)
            )
        except TimeoutError:
            ok, why, reason = False, "timeout", f"connect timed out after {self.timeout_s:g} s"
        if not ok:
            client.close()
            self._bus_backoff.failed(asyncio.get_running_loop().time(), reason, why)
            raise DeviceUnreachable(f"{self.name}: {reason}", why=why)
        self._client = client
        self._bus_backoff.reset()
        if self._connected_before:
            for health in self._health.values():
                health.stats.reconnects += 1
        self._connected_before = True
        self._timeouts_in_row = 0
        log.debug("%s connected", self.name)

    # -- requests --------------------------------------------------------------

    async def _request(
        self,
        unit: int,
        fc: int,
        what: str,
        call: Callable[[ModbusClient], Awaitable[ModbusPDU]],
    ) -> ModbusPDU:
        health = self._health.get(unit)
        try:
            rsp, latency = await self._round_trip(unit, fc, what, call)
        except DeviceError as e:
            if health:
                kind = (
                    "timeout"
                    if isinstance(e, DeviceTimeout)
                    else "unreachable"
                    if isinstance(e, DeviceUnreachable)
                    else "protocol"
                )
                health.stats.failed(kind, str(e))
                health.down(str(e))
            raise
        if rsp.isError():
            exc = ModbusExceptionResponse(getattr(rsp, "exception_code", 0), f"{what} unit {unit}")
            if health:
                # The device answered: it is up, and the refusal is still an error.
                health.stats.failed("exception", str(exc), latency)
                health.up()
            raise exc
        if health:
            health.stats.answered(latency)
            health.up()
        return rsp

    async def _round_trip(
        self,
        unit: int,
        fc: int,
        what: str,
        call: Callable[[ModbusClient], Awaitable[ModbusPDU]],
    ) -> tuple[ModbusPDU, float]:
        """The request on the wire and its reply, with the wire time in real seconds.

        This is every request's path, so it is kept lean (benchmarks/acquisition.py
        measures it against a bare pymodbus client): the clock is read twice,
        and the timeout is the bus's watchdog (see `_watch`), not an
        `asyncio.timeout` context and its timer per request (half of this
        method's own cost when it was).
        """
        loop = self._loop = asyncio.get_running_loop()
        async with self._lock:
            now = loop.time()
            ub = self._unit_backoff.get(unit)
            if ub is None:
                # Made once per unit, not per request: a Backoff seeds its own
                # random generator from the OS, a syscall worth ~10 % of a request.
                ub = self._unit_backoff[unit] = _Retry(self._backoff_min_s, self._backoff_max_s)
            if ub.waiting(now):
                raise DeviceUnreachable(
                    f"{self.name} unit {unit}: {ub.reason}; "
                    f"next attempt in {ub.retry_at - now:.1f} s",
                    why=ub.why,
                )
            if self._client is None or not self._client.connected:
                await self._ensure_connected()
                now = loop.time()
            client = self._client
            assert client is not None
            if self._quiet_until > now:
                await asyncio.sleep(self._quiet_until - now)
                now = loop.time()
            task = asyncio.current_task()
            assert task is not None
            self._in_flight = True
            self._arm(loop, task, now + self.timeout_s)
            timed_out = False
            try:
                rsp = await call(client)
            except asyncio.CancelledError:
                if not self._expired(task):
                    raise  # cancelled by someone else: not ours to swallow
                timed_out = True
            except ConnectionException as e:
                self._drop_client()
                raise DeviceUnreachable(
                    f"{self.name}: {e.string or 'connection lost'}", why="lost"
                ) from None
            except ModbusException as e:
                raise DeviceProtocolError(f"{self.name} unit {unit}: {what}: {e}") from None
            finally:
                self._watched = None
                self._in_flight = False
                end = self._quiet_until = loop.time() + self.frame_gap_s
            if timed_out:
                if self.is_rtu:
                    # A late reply may still come: keep the line quiet a little longer.
                    self._quiet_until = end + max(0.0, 0.02 - self.frame_gap_s)
                self._timeouts_in_row += 1
                if not self.is_rtu and self._timeouts_in_row >= TCP_TIMEOUTS_BEFORE_RECONNECT:
                    self._drop_client()
                reason = f"no answer to {what} within {self.timeout_s:g} s"
                ub.failed(loop.time(), "not answering", "timeout")
                raise DeviceTimeout(f"{self.name} unit {unit}: {reason}", why="timeout")
            latency = end - self.frame_gap_s - now
            self._timeouts_in_row = 0
            if ub.delays.failures:
                ub.reset()
        if rsp.function_code & 0x7F != fc:
            # Whole and well-formed, but the answer to another question.
            raise DeviceProtocolError(
                f"{self.name} unit {unit}: {what}: reply of function code {rsp.function_code}"
            )
        return rsp, latency

    def _arm(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], deadline: float
    ) -> None:
        """Watch `task`'s request until `deadline`. One timer per bus, moved
        on only when it fires: a request that is answered costs two
        assignments, not a timer made, queued and cancelled."""
        self._watched, self._deadline = task, deadline
        if self._watchdog is not None and (
            self._watchdog_loop is not loop or self._watchdog.when() > deadline
        ):
            self._watchdog.cancel()  # another loop's, or later than this deadline
            self._watchdog = None
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._watch)
            self._watchdog_loop = loop

    def _watch(self) -> None:
        """The watchdog fired: expire the request in flight if its deadline
        has passed, else wait for that deadline; idle, it stops."""
        self._watchdog = None
        task = self._watched
        if task is None or self._watchdog_loop is None:
            return
        if self._watchdog_loop.time() >= self._deadline:
            self._watched = None
            self._expiring = task
            task.cancel()
        else:
            self._watchdog = self._watchdog_loop.call_at(self._deadline, self._watch)

    def _expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether `task` was cancelled by its request's timer alone (as
        `asyncio.timeout` decides: a cancel from elsewhere as well wins)."""
        if self._expiring is not task:
            return False
        self._expiring = None
        return task.uncancel() == 0

    def _registers(self, rsp: ModbusPDU, count: int, what: str) -> list[int]:
        regs = list(rsp.registers)
        if len(regs) != count:
            raise DeviceProtocolError(f"{self.name}: {what}: {len(regs)} registers for {count}")
        return regs

    def _bits(self, rsp: ModbusPDU, count: int, what: str) -> list[bool]:
        bits = list(rsp.bits)
        if len(bits) < count:
            raise DeviceProtocolError(f"{self.name}: {what}: {len(bits)} bits for {count}")
        return [bool(b) for b in bits[:count]]

    async def read_input_registers(self, unit: int, address: int, count: int) -> list[int]:
        what = f"read input registers {address}+{count}"
        rsp = await self._request(
            unit, 4, what, lambda c: c.read_input_registers(address, count=count, device_id=unit)
        )
        return self._registers(rsp, count, what)

    async def read_holding_registers(self, unit: int, address: int, count: int) -> list[int]:
        what = f"read holding registers {address}+{count}"
        rsp = await self._request(
            unit, 3, what, lambda c: c.read_holding_registers(address, count=count, device_id=unit)
        )
        return self._registers(rsp, count, what)

    async def read_discrete_inputs(self, unit: int, address: int, count: int) -> list[bool]:
        what = f"read discrete inputs {address}+{count}"
        rsp = await self._request(
            unit, 2, what, lambda c: c.read_discrete_inputs(address, count=count, device_id=unit)
        )
        return self._bits(rsp, count, what)

    async def read_coils(self, unit: int, address: int, count: int) -> list[bool]:
        what = f"read coils {address}+{count}"
        rsp = await self._request(
            unit, 1, what, lambda c: c.read_coils(address, count=count, device_id=unit)
        )
        return self._bits(rsp, count, what)

    async def write_register(self, unit: int, address: int, value: int) -> None:
        await self._request(
            unit,
            6,
            f"write register {address}={value}",
            lambda c: c.write_register(address, value, device_id=unit),
        )

    async def write_registers(self, unit: int, address: int, values: list[int]) -> None:
        await self._request(
            unit,
            16,
            f"write registers {address}+{len(values)}",
            lambda c: c.write_registers(address, list(values), device_id=unit),
        )

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        await self._request(
            unit,
            5,
            f"write coil {address}={int(value)}",
            lambda c: c.write_coil(address, bool(value), device_id=unit),
        )

    def __repr__(self) -> str:
        return f"<ModbusBus {self.name} {'connected' if self.connected else 'down'}>"
