"""The topic names of mqtt.md, in one place for the daemon and the registry side."""

from __future__ import annotations

from dataclasses import dataclass

from linectl.registration import MAX_REGISTRATION_BYTES

__all__ = ["MAX_REGISTRATION_BYTES", "OFFLINE_PAYLOAD", "Topics"]

OFFLINE_PAYLOAD = b'{"online": false}'


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}"

    @property
    def registrations(self) -> str:
        return f"{self.base}/registrations"

    def reply(self, request_id: str) -> str:
        return f"{self.base}/registrations/{request_id}/reply"

    @property
    def all_replies(self) -> str:
        return f"{self.base}/registrations/+/reply"

    def status(self, line: str) -> str:
        return f"{self.base}/{line}/status"

    @property
    def all_status(self) -> str:
        return f"{self.base}/+/status"

    def events(self, line: str) -> str:
        return f"{self.base}/{line}/events"

    @property
    def all_events(self) -> str:
        return f"{self.base}/+/events"

    def alarms(self, line: str) -> str:
        return f"{self.base}/{line}/alarms"

    @property
    def all_alarms(self) -> str:
        return f"{self.base}/+/alarms"

    def result(self, inspection_id: str) -> str:
        return f"{self.base}/results/{inspection_id}"

    @property
    def all_results(self) -> str:
        return f"{self.base}/results/+"
