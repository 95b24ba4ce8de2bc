"""Alarms: abnormal conditions an operator must act on in time, apart from events.

`state` is the ISA-18.2 state machine, pure (no clock, no database);
`conditions` finds the conditions of a running site; `monitor` joins them: it
raises, clears, suppresses and unshelves alarms, keeps them in the store and
tells the console and the MQTT publisher of every change.
"""
