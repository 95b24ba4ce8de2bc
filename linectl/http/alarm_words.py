"""The console's words and marks for alarms: states, priorities, conditions.

Priority is never told by colour alone: each has a number (1 high, 2
medium, 3 low) and a shape (▲ ◆ ●), shown together with its colour. Codes
are catalogue msgids, translated where shown (`|msg`).
"""

from __future__ import annotations

from typing import Any

from linectl.i18n import N_

PRIORITIES = {"high": N_("High"), "medium": N_("Medium"), "low": N_("Low")}
SHAPES = {"high": "▲", "medium": "◆", "low": "●"}
STATES = {
    "unacked": N_("Unacknowledged"),
    "acked": N_("Acknowledged"),
    "rtn_unacked": N_("Returned, unacknowledged"),
    "shelved": N_("Shelved"),
    "suppressed": N_("Suppressed"),
    "out_of_service": N_("Out of service"),
    "closed": N_("Closed"),
}
KINDS = {
    "device_down": N_("Device not answering"),
    "mqtt_down": N_("Registry link down"),
    "outbox_stale": N_("Results not delivered"),
    "disk_low": N_("Storage nearly full"),
    "station_blocked": N_("Station blocked"),
    "line_idle": N_("Line calls no vehicle"),
    "driver_late": N_("Proxy driver late back"),
}
# The list's filter: every state of http.md, and "active" (all not closed).
FILTERS = {"active": N_("Open"), "all": N_("All"), **STATES}


def words() -> dict[str, Any]:
    return {
        "priorities": PRIORITIES,
        "shapes": SHAPES,
        "states": STATES,
        "kinds": KINDS,
        "filters": FILTERS,
    }
