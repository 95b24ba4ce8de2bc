"""Driver of the diesel smoke opacimeter (`model = "nht6"`, devices.md section 4).

Every frame, both ways, ends with a CS that makes all its bytes sum to 0 mod
256. `realtime()` (A5) gives live opacity N, absorption coefficient K, rpm
and oil temperature; `peaks()` (A6) the maxima of N and K since the last
`clear_peaks()` (A7); `zero()` (A4). The opacimeter does not answer a frame
it finds broken, so a garbled request shows up here as a timeout.
"""

from __future__ import annotations

from functools import partial

from linectl.drivers.framing import (
    NHT_CLEAR_PEAKS,
    NHT_PEAKS,
    NHT_REALTIME,
    NHT_ZERO,
    SmokeFrame,
    decode_nht_echo,
    decode_smoke_frame,
    nht_command,
    nht_splitter,
)
from linectl.drivers.serial import SerialDevice


class Nht6(SerialDevice):
    model = "nht6"

    async def _data(self, cmd: int, what: str) -> SmokeFrame:
        return await self.port.request(
            nht_command(cmd), nht_splitter(cmd), partial(decode_smoke_frame, cmd=cmd), what=what
        )

    async def _echo(self, cmd: int, what: str) -> None:
        await self.port.request(
            nht_command(cmd), nht_splitter(cmd), partial(decode_nht_echo, cmd=cmd), what=what
        )

    async def realtime(self) -> SmokeFrame:
        return await self._data(NHT_REALTIME, "real-time (A5)")

    async def peaks(self) -> SmokeFrame:
        return await self._data(NHT_PEAKS, "peaks (A6)")

    async def clear_peaks(self) -> None:
        await self._echo(NHT_CLEAR_PEAKS, "clear peaks (A7)")

    async def zero(self) -> None:
        await self._echo(NHT_ZERO, "zero (A4)")


__all__ = ["Nht6", "SmokeFrame"]
