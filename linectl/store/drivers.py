"""Proxy drivers: the pool as the config names it, their duty state and its log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from linectl.store.base import NotFound, StoreBase, utc
from linectl.store.models import DriverDutyLog, ProxyDriver
from linectl.store.records import DriverState, DutyLogRecord, ProxyDriverRecord


def _driver_record(r: ProxyDriver) -> ProxyDriverRecord:
    return ProxyDriverRecord(
        id=r.id, line=r.line, name=r.name, state=DriverState(r.state), updated_at=r.updated_at
    )


class ProxyDriverStore(StoreBase):
    # -- proxy drivers -------------------------------------------------------------

    def sync_proxy_drivers(
        self, line: str, drivers: list[tuple[str, str, bool]], at: datetime | None = None
    ) -> None:
        """Bring the line's proxy drivers in line with the config: (id, name, on_duty).

        A driver on duty in the config keeps a break the database knows of; one
        marked off duty is off duty; one no longer in the config is set off duty
        but kept (draws name it). Every state change, and a move from another line,
        goes into the duty log.
        """
        at = utc(at) if at is not None else datetime.now(UTC)
        wanted = {d: (name, on_duty) for d, name, on_duty in drivers}
        with self._errors(), self._write() as s:
            rows = {
                r.id: r
                for r in s.scalars(
                    select(ProxyDriver).where(
                        (ProxyDriver.line == line) | ProxyDriver.id.in_(list(wanted))
                    )
                )
            }
            for driver_id, (name, on_duty) in wanted.items():
                row = rows.get(driver_id)
                if row is None:
                    state = DriverState.ON_DUTY if on_duty else DriverState.OFF_DUTY
                    s.add(
                        ProxyDriver(
                            id=driver_id, line=line, name=name, state=str(state), updated_at=at
                        )
                    )
                    s.flush()
                    s.add(DriverDutyLog(driver_id=driver_id, line=line, state=str(state), at=at))
                    continue
                state = DriverState(row.state)
                if not on_duty:
                    state = DriverState.OFF_DUTY
                elif state is DriverState.OFF_DUTY:
                    state = DriverState.ON_DUTY
                row.name = name
                if state != row.state or row.line != line:
                    row.state, row.line, row.updated_at = str(state), line, at
                    s.add(DriverDutyLog(driver_id=driver_id, line=line, state=str(state), at=at))
            for driver_id, row in rows.items():
                if (
                    driver_id not in wanted
                    and row.line == line
                    and row.state != DriverState.OFF_DUTY
                ):
                    row.state, row.updated_at = str(DriverState.OFF_DUTY), at
                    s.add(
                        DriverDutyLog(
                            driver_id=driver_id, line=line, state=str(DriverState.OFF_DUTY), at=at
                        )
                    )

    def set_driver_state(self, driver_id: str, state: DriverState | str, at: datetime) -> None:
        state, at = DriverState(state), utc(at)
        with self._errors(), self._write() as s:
            row = s.get(ProxyDriver, driver_id)
            if row is None:
                raise NotFound(f"no proxy driver {driver_id}")
            if row.state != state:
                row.state, row.updated_at = str(state), at
                s.add(DriverDutyLog(driver_id=driver_id, line=row.line, state=str(state), at=at))

    def proxy_drivers(self, line: str) -> list[ProxyDriverRecord]:
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(ProxyDriver).where(ProxyDriver.line == line).order_by(ProxyDriver.id)
            )
            return [_driver_record(r) for r in rows]

    def duty_log(self, driver_id: str | None = None) -> list[DutyLogRecord]:
        """The duty log, oldest first (one driver's, or everyone's)."""
        q = select(DriverDutyLog).order_by(DriverDutyLog.id)
        if driver_id is not None:
            q = q.where(DriverDutyLog.driver_id == driver_id)
        with self._errors(), self._read() as s:
            return [
                DutyLogRecord(
                    id=r.id, driver_id=r.driver_id, line=r.line, state=DriverState(r.state), at=r.at
                )
                for r in s.scalars(q)
            ]
