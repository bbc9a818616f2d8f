"""monitor: watch listing pages, archive what the server sent, log every change."""

__version__ = "0.1.0"
