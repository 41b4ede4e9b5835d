"""Service areas by road (issue 28): each station's outline of a coverage run by reach.

**analysis_service_area** holds, for a run with ``reach=walk|ebike``, the road network
each qualifying station reaches within the run's limit, buffered and unioned
(``geo_service.roads.reach.outline``), for the coverage map and
``GET /v1/analysis/runs/{id}/service-areas``. Deleted with its run.

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE analysis_service_area (
    run_id bigint NOT NULL CONSTRAINT fk_analysis_service_area_run_id_analysis_run
        REFERENCES analysis_run (id) ON DELETE CASCADE,
    station_code text NOT NULL,
    geom geometry(MULTIPOLYGON, 4326) NOT NULL,
    CONSTRAINT pk_analysis_service_area PRIMARY KEY (run_id, station_code)
)""")


def downgrade() -> None:
    op.execute("DROP TABLE analysis_service_area")
