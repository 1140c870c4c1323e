"""A clock tests move by hand, so TTLs are tested without sleeping."""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """Callable clock returning a time that only :meth:`advance` changes."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
