"""Driver of the petrol exhaust gas analyser (`model = "nha503"`, devices.md section 3).

One command byte out, one reply back: `read()` sends 0x81 and returns the
21-byte reading decoded (checksum checked; a bad one is discarded, counted
and raised as `GarbledFrame`); the other commands return the analyser's
one-byte answer: accepted, busy (a zero, leak check or back-flush still
runs) or refused (warming up). Values refresh once a second on the
analyser's side; when to read is the caller's business (once a second of
clock time, standards.md).
"""

from __future__ import annotations

from linectl.drivers.framing import (
    NHA_BACK_FLUSH,
    NHA_LEAK_CHECK,
    NHA_PUMP_OFF,
    NHA_PUMP_ON,
    NHA_READ,
    NHA_ZERO,
    GasFrame,
    NhaReply,
    NhaStatus,
    decode_gas_frame,
    decode_nha_reply,
    split_gas_frame,
    split_one_byte,
)
from linectl.drivers.serial import SerialDevice

COMMAND_NAMES = {
    NHA_ZERO: "zero",
    NHA_LEAK_CHECK: "leak check",
    NHA_BACK_FLUSH: "back-flush",
    NHA_PUMP_OFF: "pump off",
    NHA_PUMP_ON: "pump on",
}


class Nha503(SerialDevice):
    model = "nha503"

    async def read(self) -> GasFrame:
        """One reading (0x81)."""
        return await self.port.request(
            bytes([NHA_READ]), split_gas_frame, decode_gas_frame, what="read (81)"
        )

    async def command(self, cmd: int) -> NhaReply:
        """Send a one-byte command (zero, leak check, back-flush, pump off/on)."""
        if cmd not in COMMAND_NAMES:
            raise ValueError(f"not an analyser command: {cmd:#04x}")
        return await self.port.request(
            bytes([cmd]),
            split_one_byte,
            decode_nha_reply,
            what=f"{COMMAND_NAMES[cmd]} ({cmd:02X})",
        )

    async def zero(self) -> NhaReply:
        return await self.command(NHA_ZERO)

    async def leak_check(self) -> NhaReply:
        return await self.command(NHA_LEAK_CHECK)

    async def back_flush(self) -> NhaReply:
        return await self.command(NHA_BACK_FLUSH)

    async def pump(self, on: bool) -> NhaReply:
        return await self.command(NHA_PUMP_ON if on else NHA_PUMP_OFF)


__all__ = ["GasFrame", "Nha503", "NhaReply", "NhaStatus"]
