"""linectl: control and data acquisition for vehicle safety-inspection lines."""

__version__ = "0.1.0"
