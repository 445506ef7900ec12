"""harness: build, verify, convert and publish Azure-ready Linux images."""

__version__ = "0.1.0"
