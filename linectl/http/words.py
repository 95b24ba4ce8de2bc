"""The console's words for the site's states: station, proxy driver, prompt, outcome, error.

Each value the site reports as a code (`testing`, `walking_back`,
`apply_brake`, `invalid_vin`) is shown as a catalogue msgid, translated
where it is rendered (`|msg` in the templates). Each state also has a
symbol, so no state is told by colour alone. A code not listed here is
shown as it is: the console never hides a state it does not know.
"""

from __future__ import annotations

from linectl.i18n import N_

ROLES = {
    "viewer": N_("viewer"),
    "operator": N_("operator"),
    "technician": N_("technician"),
    "admin": N_("admin"),
}

STATION_STATES = {
    "free": N_("Free"),
    "calling": N_("Calling in"),
    "testing": N_("Testing"),
    "blocked": N_("Blocked"),
    "leaving": N_("Leaving"),
}
STATION_SYMBOLS = {"free": "○", "calling": "→", "testing": "●", "blocked": "⚠", "leaving": "←"}

DRIVER_STATES = {
    "idle": N_("Available"),
    "driving": N_("Driving"),
    "walking_back": N_("Walking back"),
    "break": N_("On break"),
    "off_duty": N_("Off duty"),
}
DRIVER_SYMBOLS = {"idle": "○", "driving": "●", "walking_back": "←", "break": "❚❚", "off_duty": "–"}

STATION_KINDS = {"brake": N_("Brake"), "headlamp": N_("Headlamp"), "emission": N_("Emission")}

PROMPTS = {
    "drive_in": N_("Drive in"),
    "stop_here": N_("Stop here"),
    "release_brake": N_("Release the brake"),
    "apply_brake": N_("Apply the brake"),
    "apply_parking_brake": N_("Apply the parking brake"),
    "drive_forward": N_("Drive forward"),
    "high_beam_on": N_("High beam on"),
    "low_beam_on": N_("Low beam on"),
    "engine_idle": N_("Engine at idle"),
    "engine_high_idle": N_("Engine at high idle"),
    "accelerate_fully": N_("Accelerate fully"),
    "insert_probe": N_("Insert the probe"),
    "drive_out": N_("Drive out"),
    "result_pass": N_("Result: pass"),
    "result_fail": N_("Result: fail"),
    "wait": N_("Wait"),
    "remove_probe": N_("Remove the probe"),
}

# Outcomes of a finished inspection (verdicts, and aborted), with their symbols.
OUTCOMES = {
    "pass": N_("Pass"),
    "fail": N_("Fail"),
    "not_judged": N_("Not judged"),
    "incomplete": N_("Incomplete"),
    "aborted": N_("Aborted"),
    "pending": N_("Pending"),
}
OUTCOME_SYMBOLS = {
    "pass": "✓",
    "fail": "✗",
    "not_judged": "?",
    "incomplete": "?",
    "aborted": "⊘",
    "pending": "…",
}

# Registration refusals by code: a headline in the reader's language; the exact
# message of the one validation (the same as over MQTT) is shown under it.
REFUSALS = {
    "missing_field": N_("Required"),
    "invalid_vin": N_("Not a valid VIN"),
    "invalid_plate": N_("Not a valid plate"),
    "invalid_vehicle_class": N_("Not a vehicle class"),
    "unsupported_vehicle_class": N_("Not inspected on this line"),
    "invalid_fuel": N_("Not a fuel"),
    "invalid_axles": N_("Not a number of axles"),
    "invalid_parking_axles": N_("Not the vehicle's axles"),
    "invalid_mass": N_("Not a valid mass"),
    "invalid_headlamp_system": N_("Not a headlamp system"),
    "invalid_speed": N_("Not a valid speed"),
    "invalid_date": N_("Not a valid date"),
    "invalid_inspection_type": N_("Not an inspection type"),
    "invalid_items": N_("Not items of this vehicle"),
    "no_line": N_("No line can inspect this vehicle"),
    "not_allowed": N_("Not allowed"),
    "invalid_request_id": N_("Not a valid request id"),
    # A retest's refusals (linectl.ops.retest).
    "unknown_inspection": N_("No such inspection"),
    "not_retestable": N_("Cannot be retested now"),
    "vin_mismatch": N_("Not this inspection's vehicle"),
    "retest_expired": N_("Too late for a retest"),
}
