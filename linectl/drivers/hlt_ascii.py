"""Driver of the headlamp tester (`model = "hlt-ascii"`, devices.md section 5).

ASCII frames `STX payload ETX BCC`. `measure(lamp, beam)` starts the head's
search (MEA, answered ACK); `result()` polls RES: None while the tester says
BUSY, the reading when it has one. An `ERR,<code>` reply, from MEA or RES,
is raised as `HeadlampError` with its code, since the procedure acts on it:
E1 no lamp found (the beam may not be on yet), E2 vehicle not in position,
E3 busy, E4 no measurement since RST, E9 the tester got a broken frame from
us. A reply that is not a valid frame is `GarbledFrame`, as on every port.
"""

from __future__ import annotations

from linectl.drivers.errors import DeviceError, DeviceProtocolError
from linectl.drivers.framing import (
    HltError,
    HltReply,
    HltResult,
    decode_hlt,
    encode_hlt,
    hlt_measure,
    parse_hlt_reply,
    split_hlt,
)
from linectl.drivers.serial import SerialDevice

ERROR_MEANINGS = {
    HltError.NO_LAMP: "no lamp found",
    HltError.NOT_IN_POSITION: "vehicle not in position",
    HltError.BUSY: "busy",
    HltError.NO_MEASUREMENT: "no measurement",
    HltError.FRAME_ERROR: "the tester got a broken frame",
}


class HeadlampError(DeviceError):
    """The tester answered `ERR,<code>`."""

    def __init__(self, code: HltError, during: str) -> None:
        self.code = code
        super().__init__(f"headlamp tester {code.value} ({ERROR_MEANINGS[code]}) on {during}")


def _reply(frame: bytes) -> HltReply:
    return parse_hlt_reply(decode_hlt(frame))


class HltAscii(SerialDevice):
    model = "hlt-ascii"

    async def _ask(self, payload: str) -> HltReply:
        reply = await self.port.request(encode_hlt(payload), split_hlt, _reply, what=payload)
        if reply.kind == "ERR":
            assert reply.error is not None
            raise HeadlampError(reply.error, payload)
        return reply

    async def measure(self, lamp: str, beam: str) -> None:
        """MEA: the head starts searching `lamp` with `beam` on (2 to 4 s)."""
        cmd = hlt_measure(lamp, beam)
        reply = await self._ask(cmd)
        if reply.kind != "ACK":
            raise DeviceProtocolError(f"{self.id}: {cmd} answered {reply.kind}, not ACK")

    async def result(self) -> HltResult | None:
        """RES: None while the head still searches, else the reading."""
        reply = await self._ask("RES")
        if reply.kind == "BUSY":
            return None
        if reply.kind != "RES" or reply.result is None:
            raise DeviceProtocolError(f"{self.id}: RES answered {reply.kind}")
        return reply.result

    async def reset(self) -> None:
        """RST: home the head; the last result is forgotten."""
        reply = await self._ask("RST")
        if reply.kind != "ACK":
            raise DeviceProtocolError(f"{self.id}: RST answered {reply.kind}, not ACK")


__all__ = ["HeadlampError", "HltAscii", "HltError", "HltResult"]
