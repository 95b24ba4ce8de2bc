"""The proxy-driver draws: the hash chain, appended one record per draw and verified."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from linectl.store.base import NotFound, StoreBase, get_inspection, to_ms
from linectl.store.chain import verify_chain
from linectl.store.models import Draw, Inspection, ProxyDriver
from linectl.store.records import GENESIS_HASH, ChainReport, DrawRecord


def draw_record(r: Draw) -> DrawRecord:
    return DrawRecord(
        seq=r.seq,
        line=r.line,
        inspection_id=r.inspection_id,
        candidates=list(r.candidates),
        chosen=r.chosen,
        drawn_at=r.drawn_at,
        prev_hash=r.prev_hash,
        hash=r.hash,
        vehicles=None if r.vehicles is None else list(r.vehicles),
    )


class DrawStore(StoreBase):
    # -- draws -------------------------------------------------------------------

    def record_draw(
        self,
        *,
        line: str,
        inspection_id: str,
        candidates: list[str],
        chosen: str,
        at: datetime,
        vehicles: list[str] | None = None,
    ) -> DrawRecord:
        """Append a draw to the chain (next seq, linked to the last hash) and give
        the inspection its proxy driver, in one transaction. `vehicles`: the
        inspections the vehicle was drawn among, `inspection_id` one of them."""
        if chosen not in candidates:
            raise ValueError(f"chosen proxy driver {chosen!r} is not among {candidates}")
        if vehicles is not None and inspection_id not in vehicles:
            raise ValueError(f"drawn inspection {inspection_id!r} is not among {vehicles}")
        at = to_ms(at)

        def work(s: Session) -> DrawRecord:
            row = get_inspection(s, inspection_id)
            if s.get(ProxyDriver, chosen) is None:
                raise NotFound(f"no proxy driver {chosen} (sync_proxy_drivers() registers them)")
            last = s.scalars(select(Draw).order_by(Draw.seq.desc()).limit(1)).first()
            unsealed = DrawRecord(
                seq=1 if last is None else last.seq + 1,
                line=line,
                inspection_id=inspection_id,
                candidates=list(candidates),
                chosen=chosen,
                drawn_at=at,
                prev_hash=GENESIS_HASH if last is None else last.hash,
                hash="",
                vehicles=None if vehicles is None else list(vehicles),
            )
            record = replace(unsealed, hash=unsealed.content_hash())
            s.add(
                Draw(
                    seq=record.seq,
                    line=record.line,
                    inspection_id=record.inspection_id,
                    candidates=record.candidates,
                    chosen=record.chosen,
                    drawn_at=record.drawn_at,
                    prev_hash=record.prev_hash,
                    hash=record.hash,
                    vehicles=record.vehicles,
                )
            )
            row.proxy_driver_id = chosen
            return record

        return self._write_retrying(work)

    def draws(
        self, line: str | None = None, *, inspection_id: str | None = None
    ) -> list[DrawRecord]:
        """The draws in seq order: all, one line's, or one inspection's (each visit's)."""
        q = select(Draw).order_by(Draw.seq)
        if line is not None:
            q = q.where(Draw.line == line)
        if inspection_id is not None:
            q = q.where(Draw.inspection_id == inspection_id)
        with self._errors(), self._read() as s:
            return [draw_record(r) for r in s.scalars(q)]

    def draw_vehicles(self, line: str | None = None) -> dict[str, tuple[str, str]]:
        """(plate, VIN) of each drawn inspection, by inspection id: what the audit's
        clustering test groups a driver's vehicles by."""
        q = select(Inspection.id, Inspection.plate, Inspection.vin).join(
            Draw, Draw.inspection_id == Inspection.id
        )
        if line is not None:
            q = q.where(Draw.line == line)
        with self._errors(), self._read() as s:
            return {iid: (plate, vin) for iid, plate, vin in s.execute(q)}

    def verify_draws(self) -> ChainReport:
        """Recompute every hash and link of the draw chain, in seq order; stops at the
        first problem and names it (see linectl.store.chain)."""
        with self._errors(), self._read() as s:
            rows = s.scalars(select(Draw).order_by(Draw.seq)).yield_per(1000)
            return verify_chain((draw_record(r) for r in rows), "draw")
