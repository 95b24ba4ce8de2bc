"""The simulator: device emulators and a world of vehicles and proxy drivers."""
