"""What a line holds: its queued vehicles, its stations' occupancy, and the recorder
that writes a vehicle's attempts (through the line, so a write waits for the
database while it refuses). Kept apart from line.py, which moves vehicles."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from linectl.items import ItemResult
from linectl.scheduler.stats import JourneyTimes
from linectl.stations.base import Procedure, Recorder
from linectl.store.repo import AsyncStore
from linectl.vehicle import InspectionType, Vehicle

if TYPE_CHECKING:
    from linectl.scheduler.line import LineRunner


@dataclass
class Queued:
    inspection_id: str
    vehicle: Vehicle
    inspection_type: InspectionType
    items: list[str]
    times: JourneyTimes
    overtaken: int = 0  # vehicles queued after it that were called before it

    @property
    def plate(self) -> str:
        return self.vehicle.plate


@dataclass
class Slot:
    """A station's occupancy: who holds it, in what state."""

    index: int
    procedure: Procedure
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    state: str = "free"  # free | calling | testing | blocked | leaving
    plate: str | None = None
    inspection_id: str | None = None

    @property
    def kind(self) -> str:
        return self.procedure.kind


class StoreRecorder(Recorder):
    def __init__(
        self, store: AsyncStore, inspection_id: str, runner: LineRunner | None = None
    ) -> None:
        self.store = store
        self.inspection_id = inspection_id
        self.recorded: set[str] = set()  # item codes with an attempt from this visit
        self.runner = runner  # waits for the database through the runner, when given

    async def attempt(
        self,
        result: ItemResult,
        *,
        station: str,
        device: str | None,
        started_at: datetime,
        finished_at: datetime,
    ) -> int:
        # Noted first: a store call whose caller is cancelled still commits.
        self.recorded.add(result.code)

        def write() -> Any:
            return self.store.record_attempt(
                inspection_id=self.inspection_id,
                result=result,
                station=station,
                device=device,
                started_at=started_at,
                finished_at=finished_at,
            )

        if self.runner is None:
            return int(await write())
        slot = next((s for s in self.runner.slots if s.procedure.id == station), None)
        what = f"attempt {result.code} of {self.inspection_id}"
        return int(await self.runner.commit(what, write, slot, self.inspection_id))
