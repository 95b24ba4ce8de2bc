"""Technicians' diagnostics: `linectl diag`, over the project's own drivers.

Every subcommand speaks to the instruments through linectl/drivers (the
Modbus bus, the serial port owner, the device drivers and the frames of
framing.py), so what diag sees is what the daemon sees; there is no second
protocol implementation here. One module per subcommand (ports, devices,
modbus, serial_send, watch, selftest, stats, sniff); what they share: the
words for errors (explain), finding a device in the config (target), the
daemon's HTTP API (api) and printing (output). The argument parser is in
args.py, which imports nothing heavy, so `linectl --help` stays fast.
"""
