"""What extraction produces: one item of a page (models.py re-exports it).

Alone in its module so that a parse worker, which imports extraction and nothing else,
does not build the cycle's dozen other dataclasses at its start (models.py).
"""

from __future__ import annotations

from msgspec import Struct


class Entry(Struct, frozen=True):
    """One item extracted from a page: text already decoded and whitespace-normalised."""

    title: str
    link: str | None
    description: str
