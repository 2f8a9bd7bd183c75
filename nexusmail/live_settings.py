"""The daemon's settings of the moment, which a reload swaps as one value.

Every running part keeps this holder, not a copy of `Settings`, and reads
`holder.current` where it uses a value: a reload then reaches each of them at once,
and no part's fields are written from outside it. `Settings` is frozen, so a reader
that takes `current` once sees one consistent version for the rest of its work.
"""

from __future__ import annotations

from nexusmail.config import Settings


class LiveSettings:
    """Holds the current validated `Settings`; `swap` replaces them in one step."""

    def __init__(self, settings: Settings) -> None:
        self._current = settings
        self.generation = 0  # counts swaps, so a part can tell its cached view is old

    @property
    def current(self) -> Settings:
        return self._current

    def swap(self, settings: Settings) -> None:
        # One attribute store on the event loop's thread: no reader sees half of it.
        self._current = settings
        self.generation += 1


def live(settings: Settings | LiveSettings) -> LiveSettings:
    """The holder itself, or a fixed one for a part built outside the daemon (CLI, tests)."""
    return settings if isinstance(settings, LiveSettings) else LiveSettings(settings)
