"""What ``app.state`` carries for nearest, typed: the keeper that holds the memory
index (``keeper.Keeper``), or None when the index is off.

Starlette's ``State`` hands back ``Any`` (and this module stays free of the web
framework: the keeper's package is not the HTTP layer); every reader goes through
:func:`nearest_keeper` so that mypy checks what it does with the keeper, and the
protocol lists all that the HTTP side may use of it.
"""

from __future__ import annotations

from typing import Protocol

from geo_service.stations.nearest_index.index import Index
from geo_service.stations.nearest_index.keeper import IndexStatus


class NearestKeeper(Protocol):
    """The memory index as requests see it (implemented by ``keeper.Keeper``)."""

    #: nearest answers counted by source ("memory", "sql"), shown by /healthz
    answers: dict[str, int]
    #: monotonic time this process last answered a write (it reads its own writes)
    wrote_at: float

    def usable(self, min_seq: int | None = None) -> Index | None:
        """The index when it may answer (loaded, fresh, has applied ``min_seq``)."""

    def status(self) -> IndexStatus:
        """What /healthz shows of the index."""


def nearest_keeper(state: object) -> NearestKeeper | None:
    """The app's keeper (``app.state.nearest_index``), None when the index is off."""
    keeper: NearestKeeper | None = getattr(state, "nearest_index", None)
    return keeper


def set_nearest_keeper(state: object, keeper: NearestKeeper | None) -> None:
    """Put the keeper on ``app.state`` (the lifespan, once it has started it)."""
    state.nearest_index = keeper  # type: ignore[attr-defined]  # any object: app.state
