"""Device drivers: one module per wire protocol or instrument model (devices.md)."""
