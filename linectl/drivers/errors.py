"""What can go wrong between the daemon and an instrument.

Every error here is a `DeviceError`: the reading or command it concerns cannot
be trusted, so a procedure stops or repeats the step and records why. The
bus maps library and socket errors to these types; nothing above the drivers
sees a pymodbus or OS exception.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Anything that makes a measurement or a command untrustworthy."""


class DeviceTimeout(DeviceError):
    """The device did not answer one request in time (real seconds)."""


class DeviceUnreachable(DeviceError):
    """No link to the device: port closed, connection refused, or the device is
    in its retry backoff after failing; the request was not sent."""


class DeviceProtocolError(DeviceError):
    """The device answered, but not what the wire contract allows (a reply of
    the wrong length, an undefined state code, a sample count going back)."""


class ModbusExceptionResponse(DeviceError):
    """The device refused a request with a Modbus exception (02 illegal data
    address, 03 illegal data value, ...). The link itself is fine."""

    def __init__(self, code: int, request: str = "") -> None:
        self.code = int(code)
        self.request = request
        names = {1: "illegal function", 2: "illegal data address", 3: "illegal data value"}
        what = names.get(self.code, "device failure" if self.code == 4 else "exception")
        super().__init__(
            f"Modbus exception {self.code:02d} ({what}){': ' + request if request else ''}"
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
