"""nexusmail: an email-centric ticketing daemon for field-service companies."""

__version__ = "0.1.0"
