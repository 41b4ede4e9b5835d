"""``geo-service sample remove``: take the labelled SAMPLE DATA out, and nothing else.

Why: a city that tried the service on the sample and then loaded its own stations and
demand should not carry the sample along (it used to mark every later coverage run as
sample data, issue 24). Everything the sample loader writes carries ``sample = true``
(stations, demand points, inspections, visits, reports, awards, confirmations) or hangs
off a sample station (a cooling bus's stops); a coverage run is sample when sample
stations or demand are in it. Rows without the flag are never touched, however close
to the sample they lie: a real visit recorded at a sample station stays.

Sample stations become tombstones (status ``closed``, ``deleted_at`` set, a new
version) rather than vanishing: the change feed is how the courier app's offline copy,
the memory index and navigation platforms learn a station is gone, and a row deleted
outright would never reach them (and could move the feeds' ETag back to a value
clients already hold). Everything else is deleted. One transaction: all or nothing.
Running it twice removes nothing the second time.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from geo_service.domain.audit import SET_ACTOR, actor_json
from geo_service.domain.principal import Principal
from geo_service.stations.queries import LOCK_CHANGES

__all__ = ["remove_sample"]

#: Who the audit trail names for the tombstones.
ACTOR: Final = "geo-service sample remove"

# Runs flagged sample, each with whether sample data really lies in its region (sample
# demand inside it, or a sample station within the 25 km stations are loaded from).
# Runs stored before issue 24 were flagged whenever a sample station existed anywhere,
# so the flag alone would take real work with it. A run whose region cannot be rebuilt
# (its area is gone) is trusted to be what its flag says.
SAMPLE_RUNS = """
WITH runs AS (
    SELECT r.id, CASE
        WHEN r.params->>'area' IS NOT NULL
            THEN (SELECT a.geom FROM admin_area a WHERE a.code = r.params->>'area')
        WHEN jsonb_typeof(r.params->'polygon') = 'object'
            THEN ST_SetSRID(ST_GeomFromGeoJSON(r.params->>'polygon'), 4326)
        WHEN jsonb_typeof(r.params->'bbox') = 'array'
            THEN ST_MakeEnvelope((r.params->'bbox'->>0)::float8, (r.params->'bbox'->>1)::float8,
                                 (r.params->'bbox'->>2)::float8, (r.params->'bbox'->>3)::float8,
                                 4326)
    END AS g
    FROM analysis_run r WHERE r.sample
)
SELECT id, g IS NULL
    OR EXISTS (SELECT 1 FROM demand_point d WHERE d.sample AND ST_Covers(g, d.geog::geometry))
    OR EXISTS (SELECT 1 FROM station s WHERE s.sample AND s.status <> 'duplicate'
               AND ST_DWithin(s.geog, g::geography, 25000))
FROM runs
"""

#: (what, statement) in order: dependants before what they hang off.
_DELETES: Final = (
    ("stops", "DELETE FROM station_stop WHERE station_id IN "
              "(SELECT id FROM station WHERE sample)"),
    ("visits", "DELETE FROM visit WHERE sample"),
    ("inspections", "DELETE FROM inspection WHERE sample"),
    ("awards", "DELETE FROM station_award WHERE sample"),
    ("report_resolutions", "DELETE FROM report_resolution WHERE report_id IN "
                           "(SELECT id FROM station_report WHERE sample)"),
    ("reports", "DELETE FROM station_report WHERE sample"),
    ("confirmations", "DELETE FROM confirmation WHERE sample"),
    ("demand_points", "DELETE FROM demand_point WHERE sample"),
)

# Sample stations not yet tombstones become tombstones; a duplicate is one already.
TOMBSTONE = """
UPDATE station SET status = 'closed', deleted_at = coalesce(deleted_at, now()),
       scheduled = false, version = version + 1, updated_at = now()
WHERE sample AND (status NOT IN ('closed', 'duplicate') OR deleted_at IS NULL
                  OR scheduled)
"""


def remove_sample(conn: psycopg.Connection[Any],
                  principal: Principal | None = None) -> dict[str, int]:
    """Remove the sample data in one transaction; counts of rows removed by kind.

    ``principal``: the console's admin who asked, named in the audit trail (None: the
    command line, named :data:`ACTOR`).

    ``runs`` counts the sample runs deleted (with their cells and sites);
    ``runs_relabelled`` the runs flagged sample by the old rule that hold no sample
    data, kept and flagged real; ``stations`` the sample stations made tombstones.
    """
    with conn.transaction():
        conn.execute(SET_ACTOR, (actor_json(principal, name=ACTOR),))
        conn.execute(LOCK_CHANGES)
        verdicts = conn.execute(SAMPLE_RUNS).fetchall()
        sample_runs = [i for i, is_sample in verdicts if is_sample]
        real_runs = [i for i, is_sample in verdicts if not is_sample]
        out = {"runs": conn.execute("DELETE FROM analysis_run WHERE id = ANY(%s)",
                                    (sample_runs,)).rowcount,
               "runs_relabelled": conn.execute(
                   "UPDATE analysis_run SET sample = false WHERE id = ANY(%s)",
                   (real_runs,)).rowcount}
        for what, sql in _DELETES:
            out[what] = conn.execute(sql).rowcount
        out["stations"] = conn.execute(TOMBSTONE).rowcount
    return out
