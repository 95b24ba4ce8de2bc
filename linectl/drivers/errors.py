"""What can go wrong between the daemon and an instrument.

Every error here is a `DeviceError`: the reading or command it concerns cannot
be trusted, so a procedure stops or repeats the step and records why. The
bus maps library and socket errors to these types; nothing above the drivers
sees a pymodbus or OS exception.
"""

from __future__ import annotations

import errno
import socket


class DeviceError(Exception):
    """Anything that makes a measurement or a command untrustworthy.

    `why` is a short key for what went wrong at the OS level, when known
    (see `os_error_words`), so a tool can add the remedy without parsing text."""

    def __init__(self, message: str = "", *, why: str | None = None) -> None:
        super().__init__(message)
        self.why = why


class DeviceTimeout(DeviceError):
    """The device did not answer one request in time (real seconds)."""


class DeviceUnreachable(DeviceError):
    """No link to the device: port closed, connection refused, or the device is
    in its retry backoff after failing; the request was not sent."""


class DeviceProtocolError(DeviceError):
    """The device answered, but not what the wire contract allows (a reply of
    the wrong length, an undefined state code, a sample count going back)."""


# Modbus exception codes (Modbus Application Protocol v1.1b3, section 7).
MODBUS_EXCEPTIONS = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}


class ModbusExceptionResponse(DeviceError):
    """The device refused a request with a Modbus exception (02 illegal data
    address, 03 illegal data value, ...). The link itself is fine."""

    def __init__(self, code: int, request: str = "") -> None:
        self.code = int(code)
        self.request = request
        what = MODBUS_EXCEPTIONS.get(self.code, "unknown exception")
        super().__init__(
            f"Modbus exception {self.code:02X} ({what}){': ' + request if request else ''}"
        )


class RingOverrun(DeviceError):
    """Samples of the brake tester's ring were overwritten before they were read,
    or may have been while they were being read. `lost` is how many samples
    are lost or at risk; the curve is incomplete and must not be judged."""

    def __init__(self, lost: int, first: int, count: int) -> None:
        self.lost = lost
        self.first = first
        self.count = count
        super().__init__(
            f"ring overrun: {lost} sample(s) lost or at risk "
            f"(reader at sample {first}, device at {count}, ring holds 1024)"
        )


# errno values that mean "another program holds the port": pyserial's exclusive
# open takes an flock (EWOULDBLOCK); some drivers answer EBUSY themselves.
_BUSY = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}


def os_error_words(e: BaseException) -> tuple[str, str]:
    """(why, words) for an OS error met while reaching a device: a short key
    (refused, no_route, unknown_host, timeout, permission, no_port, busy, io,
    other) and a few words for a log line."""
    if isinstance(e, socket.gaierror):
        return "unknown_host", "unknown host name"
    if isinstance(e, TimeoutError):
        return "timeout", "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "refused", "connection refused"
    code = getattr(e, "errno", None)
    if not isinstance(code, int) and e.args and isinstance(e.args[0], int):
        code = e.args[0]  # pyserial's SerialException(errno, text)
    if code == errno.ECONNREFUSED:
        return "refused", "connection refused"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "no_route", "no route to host"
    if code == errno.ETIMEDOUT:
        return "timeout", "timed out"
    if code in (errno.EACCES, errno.EPERM):
        return "permission", "permission denied"
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return "no_port", "no such port"
    if code in _BUSY:
        return "busy", "busy: another program has it open"
    if code == errno.EIO:
        return "io", "input/output error"
    text = str(e.args[-1]) if e.args else ""
    return "other", text or type(e).__name__
