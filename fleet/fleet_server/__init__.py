"""Reference fleet services for the Pico W IoT firmware: discovery, config, state, alarms, updates."""

__version__ = "0.1.0"
