"""The line: queue, station occupancy, proxy-driver pool and random assignment."""
