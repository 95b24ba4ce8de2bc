"""The upstream registry over MQTT: registrations in, status, events and results out."""
