"""Who may go along a way, and how fast: the OSM tags read as walk and e-bike rules.

Pure (no database, no web) so the loader and the tests share one reading of the tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: ``highway`` values that are not (yet, or any more) a way anyone goes along.
NOT_WAYS = frozenset({"construction", "proposed", "planned", "abandoned", "disused",
                      "razed", "platform", "bus_stop", "corridor", "elevator", "rest_area",
                      "services", "escape", "raceway", "emergency_bay", "no"})
#: Never walked whatever the tags say (expressways and their ramps, trunk roads).
NEVER_WALKED = frozenset({"motorway", "motorway_link", "trunk", "trunk_link"})
_NO = frozenset({"no", "private"})
_YES = frozenset({"yes", "designated", "permissive", "destination"})
#: Ridden only when bicycle=* allows it.
_BICYCLE_ONLY_IF_SIGNED = frozenset({"footway", "pedestrian"})


@dataclass(frozen=True)
class Passage:
    """Speeds along a way in metres a second; 0 means not that way (forward is the
    way's node order)."""

    walk: float
    ebike_forward: float
    ebike_backward: float

    @property
    def usable(self) -> bool:
        return self.walk > 0 or self.ebike_forward > 0 or self.ebike_backward > 0


def passage(tags: Mapping[str, str], walk_speed: float,
            ebike_speeds: Mapping[str, float]) -> Passage | None:
    """The way's :class:`Passage`, or None when it is no road for either mode.

    >>> passage({"highway": "residential", "oneway": "yes"}, 1.2, {"residential": 4.2})
    Passage(walk=1.2, ebike_forward=4.2, ebike_backward=0.0)
    """
    highway = tags.get("highway")
    if highway is None or highway in NOT_WAYS or tags.get("area") == "yes":
        return None
    access = tags.get("access", "")
    foot = tags.get("foot", "")
    bicycle = tags.get("bicycle", "")
    walk_ok = highway not in NEVER_WALKED and foot not in _NO and (
        access not in _NO or foot in _YES)
    ride = ebike_speeds.get(highway, 0.0)
    if highway in _BICYCLE_ONLY_IF_SIGNED and bicycle not in _YES:
        ride = 0.0
    if bicycle in _NO or (access in _NO and bicycle not in _YES):
        ride = 0.0
    forward = backward = ride
    if ride > 0:
        oneway = tags.get("oneway", "")
        if oneway == "" and (tags.get("junction") in ("roundabout", "circular")
                             or highway in ("motorway", "motorway_link")):
            oneway = "yes"
        contraflow = tags.get("oneway:bicycle") == "no" or \
            tags.get("cycleway", "").startswith("opposite")
        if oneway in ("yes", "1", "true") and not contraflow:
            backward = 0.0
        elif oneway == "-1" and not contraflow:
            forward = 0.0
    found = Passage(walk_speed if walk_ok else 0.0, forward, backward)
    return found if found.usable else None
