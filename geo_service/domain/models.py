"""The PostGIS schema as SQLAlchemy 2 + GeoAlchemy2 models.

The schema changes only through Alembic migrations (``migrations/``); a test
checks that the migrated database and these models agree. The request path
talks to PostgreSQL through hand-written SQL in ``*/queries.py`` (psycopg 3),
because the nearest query needs control over the KNN plan that an ORM hides.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INT4MULTIRANGE, JSONB, TSTZMULTIRANGE, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from geo_service.domain.catalogue import HostType, Status

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: type[Any]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Amenity(Base):
    """Catalogue row: :mod:`geo_service.domain.catalogue` as the migrations inserted it."""

    __tablename__ = "amenity"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    bit: Mapped[int] = mapped_column(SmallInteger, unique=True)
    label_zh: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    ten_ones: Mapped[bool] = mapped_column(Boolean)


class AdminArea(Base):
    """Province / city / district / street, the levels unions report by."""

    __tablename__ = "admin_area"
    __table_args__ = (
        CheckConstraint("level IN ('province', 'city', 'district', 'street')", name="level"),
        Index("ix_admin_area_geom", "geom", postgresql_using="gist"),
    )

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(
        Text, ForeignKey("admin_area.code", deferrable=True, initially="DEFERRED"), index=True
    )
    geom: Mapped[Any | None] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)
    )
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class AdminAreaPart(Base):
    """An area cut into pieces of at most 128 vertices (``ST_Subdivide``), kept in step
    with ``admin_area`` by a trigger, so placing a point tests small pieces, not whole
    real boundaries (migration 0006)."""

    __tablename__ = "admin_area_part"
    __table_args__ = (Index("ix_admin_area_part_geom", "geom", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    code: Mapped[str] = mapped_column(
        Text, ForeignKey("admin_area.code", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))


class Station(Base):
    """One outdoor-worker station.

    ``amenity_mask`` holds the amenities as bits (see the catalogue);
    ``open_minutes`` / ``open_periods`` / ``unknown_periods`` are the compiled
    opening hours that keep the open-now filter inside the SQL of the nearest
    query. ``opening_hours`` NULL means the hours are unknown (``hours_kind``
    ``'unknown'``): open-now is NULL for such a station, never a guess.
    """

    __tablename__ = "station"
    __table_args__ = (
        CheckConstraint(_in("host_type", HostType), name="host_type"),
        CheckConstraint(_in("status", Status), name="status"),
        CheckConstraint("hours_kind IN ('weekly', 'dated', 'unknown')", name="hours_kind"),
        CheckConstraint("(opening_hours IS NULL) = (hours_kind = 'unknown')",
                        name="hours_unknown"),
        CheckConstraint("unknown_periods IS NULL OR hours_kind = 'dated'",
                        name="unknown_periods"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint("source_crs IN ('wgs84', 'gcj02', 'bd09')", name="source_crs"),
        CheckConstraint("length(hours_text) <= 2000", name="hours_text"),
        Index("ix_station_geog", "geog", postgresql_using="gist"),
        Index("ix_station_geom", text("(geog::geometry)"), postgresql_using="gist"),
        Index("ix_station_updated_at", "updated_at", "id"),
        Index("ix_station_district_code", "district_code"),
        Index("ix_station_city_code", "city_code"),
        Index("ix_station_change_seq", "change_seq", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    province: Mapped[str | None] = mapped_column(Text)
    province_code: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    city_code: Mapped[str | None] = mapped_column(Text)
    district: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text)
    street: Mapped[str | None] = mapped_column(Text)
    street_code: Mapped[str | None] = mapped_column(Text)
    geog: Mapped[Any] = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False), nullable=False
    )
    host_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    #: OSM ``opening_hours``; NULL when nobody knows them (migration 0007).
    opening_hours: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(Text, server_default=text("'Asia/Shanghai'"))
    hours_kind: Mapped[str] = mapped_column(Text)
    open_minutes: Mapped[Any] = mapped_column(INT4MULTIRANGE)
    open_periods: Mapped[Any | None] = mapped_column(TSTZMULTIRANGE)
    #: When a dated rule's state is ``unknown`` (open-now answers NULL there).
    unknown_periods: Mapped[Any | None] = mapped_column(TSTZMULTIRANGE)
    hours_valid_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Calendar label the compiled hours came from (``calendar_hours``); NULL: not yet.
    hours_calendar: Mapped[str | None] = mapped_column(Text)
    #: Follows make-up working days and official days off; NULL: host type's default.
    official_workdays: Mapped[bool | None] = mapped_column(Boolean)
    phone: Mapped[str | None] = mapped_column(Text)
    floor_area_m2: Mapped[float | None] = mapped_column(Numeric(8, 1))
    seats: Mapped[int | None] = mapped_column(Integer)
    opened_on: Mapped[dt.date | None] = mapped_column(Date)
    amenity_mask: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_verified_on: Mapped[dt.date | None] = mapped_column(Date)
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    #: Position in the change feed, drawn in commit order by a trigger (migration 0003).
    change_seq: Mapped[int] = mapped_column(BigInteger)
    #: Set when enough independent workers report it closed; cleared by an editor.
    reported_closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The last one-tap "as listed" confirmation by a worker.
    last_confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: A mobile station with a schedule of stops: nearest finds it at its current stop.
    scheduled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: What the clerk's sheet said, for the union export's round trip (migration 0014):
    #: the coordinate system of the import, and Chinese hours as typed.
    source_crs: Mapped[str | None] = mapped_column(Text)
    hours_text: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    """A bearer key for write endpoints; only a hash of the secret is kept."""

    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'editor', 'inspector')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    prefix: Mapped[str] = mapped_column(Text, unique=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    area_code: Mapped[str | None] = mapped_column(Text, ForeignKey("admin_area.code"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    replaces_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("api_key.id"))


class StaffUser(Base):
    """A person who signs in to the console, with a key's role and area (migration 0013)."""

    __tablename__ = "staff_user"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'editor', 'inspector')", name="role"),
        Index("uq_staff_user_name", func.lower(text("name")), unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    area_code: Mapped[str | None] = mapped_column(Text, ForeignKey("admin_area.code"))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failed_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))


class StaffSession(Base):
    """A console session: the SHA-256 of its token, never the token."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    client_group: Mapped[str | None] = mapped_column(Text)
    csrf_secret: Mapped[str] = mapped_column(Text)


class ImportUpload(Base):
    """A console import's previewed upload, kept until confirmed (migration 0014)."""

    __tablename__ = "import_upload"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    token_sha256: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(Text)
    crs: Mapped[str] = mapped_column(Text)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    file_sha256: Mapped[bytes] = mapped_column(LargeBinary)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    fingerprint: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    applied_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class StaffSigninFailure(Base):
    """A failed console sign-in, counted per client group for throttling."""

    __tablename__ = "staff_signin_failure"
    __table_args__ = (Index("ix_staff_signin_failure_client_group_at", "client_group", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    client_group: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DemandPoint(Base):
    """Where outdoor workers gather, weighted by how many; input to coverage analysis."""

    __tablename__ = "demand_point"
    __table_args__ = (
        CheckConstraint("weight >= 0", name="weight"),
        Index("ix_demand_point_geog", "geog", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    geog: Mapped[Any] = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False), nullable=False
    )
    weight: Mapped[float] = mapped_column(Float)
    worker_type: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    observed_on: Mapped[dt.date | None] = mapped_column(Date)
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class AnalysisRun(Base):
    """One coverage or recommendation run: its parameters, input counts and summary."""

    __tablename__ = "analysis_run"
    __table_args__ = (
        CheckConstraint("kind IN ('coverage', 'recommendations')", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class AnalysisCell(Base):
    """Coverage of one H3 cell within one admin area, for a run (maps read these).

    No polygon column: the hexagon follows from the cell id (``h3.cell_to_boundary``)
    and building ~10^6 of them on every run cost more than the analysis itself.
    """

    __tablename__ = "analysis_cell"

    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("analysis_run.id", ondelete="CASCADE"), primary_key=True
    )
    cell: Mapped[str] = mapped_column(Text, primary_key=True)
    area_code: Mapped[str] = mapped_column(Text, primary_key=True)
    demand: Mapped[float] = mapped_column(Float)
    points: Mapped[int] = mapped_column(Integer)
    nearest_code: Mapped[str | None] = mapped_column(Text)
    nearest_m: Mapped[float | None] = mapped_column(Float)
    second_m: Mapped[float | None] = mapped_column(Float)
    covered: Mapped[bool] = mapped_column(Boolean)
    doubly: Mapped[bool] = mapped_column(Boolean)


class AnalysisSite(Base):
    """A recommended new site, in order of pick."""

    __tablename__ = "analysis_site"

    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("analysis_run.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(Text)
    geog: Mapped[Any] = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False), nullable=False
    )
    gain: Mapped[float] = mapped_column(Float)
    covered_after: Mapped[float] = mapped_column(Float)


class AnalysisServiceArea(Base):
    """A station's service area by road in a run with ``reach=walk|ebike`` (0022): the
    road network it reaches within the limit, buffered and unioned."""

    __tablename__ = "analysis_service_area"

    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("analysis_run.id", ondelete="CASCADE"), primary_key=True
    )
    station_code: Mapped[str] = mapped_column(Text, primary_key=True)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
                                      nullable=False)


# --------------------------------------------------------------------------- operations (0004)

#: Worker types a check-in may name (no name, no phone, no precise location).
WORKER_TYPES = ("sanitation", "delivery", "courier", "truck_driver", "traffic", "other")
#: What a worker can report about a station.
REPORT_KINDS = ("closed", "amenity_missing", "amenity_broken", "wrong_location", "moved", "other")
AWARD_LEVELS = ("national", "provincial", "city")


def _among(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class StationStop(Base):
    """One stop of a mobile station's schedule: where it parks, and when.

    Hours are OSM ``opening_hours`` per stop, compiled like a station's
    (``open_minutes`` / ``open_periods``) so "is it at this stop now" stays in
    SQL; ``valid_from`` / ``valid_to`` bound the stop to a date range (local
    dates, inclusive). A schedule's stops never overlap in time (checked on write).
    """

    __tablename__ = "station_stop"
    __table_args__ = (
        CheckConstraint("hours_kind IN ('weekly', 'dated')", name="hours_kind"),
        CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from",
                        name="valid_range"),
        Index("ix_station_stop_geog", "geog", postgresql_using="gist"),
        Index("ix_station_stop_station_id", "station_id", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("station.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(Text)
    geog: Mapped[Any] = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False), nullable=False
    )
    opening_hours: Mapped[str] = mapped_column(Text)
    hours_kind: Mapped[str] = mapped_column(Text)
    open_minutes: Mapped[Any] = mapped_column(INT4MULTIRANGE)
    open_periods: Mapped[Any | None] = mapped_column(TSTZMULTIRANGE)
    hours_valid_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    hours_calendar: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)


class Inspection(Base):
    """An inspector's visit: the ten ones present / missing / broken, and what else was seen.

    The station's verified amenities and ``last_verified_on`` follow its latest
    inspection; every inspection stays as history.
    """

    __tablename__ = "inspection"
    __table_args__ = (
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 100)", name="score"),
        CheckConstraint("ten_ones_count BETWEEN 0 AND 10", name="ten_ones_count"),
        Index("ix_inspection_station_id", "station_id", "inspected_on", "id"),
        Index("ix_inspection_inspected_on", "inspected_on"),
        Index("uq_inspection_idempotency_key", "idempotency_key", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("station.id"))
    inspected_on: Mapped[dt.date] = mapped_column(Date)
    inspector_key_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("api_key.id"))
    inspector: Mapped[str] = mapped_column(Text)
    items: Mapped[dict[str, Any]] = mapped_column(JSONB)
    extras: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    hours_observed: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    remarks: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Numeric(5, 1))
    ten_ones_count: Mapped[int] = mapped_column(SmallInteger)
    amenity_mask: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: The client's key for this submission (the console's form): a retry is answered
    #: with the inspection it already recorded (migration 0024).
    idempotency_key: Mapped[Any | None] = mapped_column(UUID(as_uuid=True))


class HolidayArrangement(Base):
    """A year's days off and make-up working days as an operator entered them (China:
    the State Council's notice, before the calendar package has it)."""

    __tablename__ = "holiday_arrangement"
    __table_args__ = (CheckConstraint("year BETWEEN 2000 AND 2100", name="year"),)

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    notice: Mapped[str] = mapped_column(Text)
    days_off: Mapped[list[dt.date]] = mapped_column(ARRAY(Date))
    workdays: Mapped[list[dt.date]] = mapped_column(ARRAY(Date))
    entered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())


class Visit(Base):
    """One check-in at a station (person-times served). No name, phone or location.

    ``device_hash`` / ``client_hash`` are keyed hashes of the device cookie and
    the client address: enough to de-duplicate and rate-limit, not to identify.
    """

    __tablename__ = "visit"
    __table_args__ = (
        CheckConstraint(f"worker_type IS NULL OR {_among('worker_type', WORKER_TYPES)}",
                        name="worker_type"),
        Index("ix_visit_station_id", "station_id", "at"),
        Index("ix_visit_device_hash", "device_hash", "station_id", "at"),
        Index("ix_visit_client_hash", "client_hash", "at"),
        Index("ix_visit_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("station.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    worker_type: Mapped[str | None] = mapped_column(Text)
    device_hash: Mapped[str | None] = mapped_column(Text)
    client_hash: Mapped[str | None] = mapped_column(Text)
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class StationReport(Base):
    """A worker's report of a problem at a station; editors resolve or reject it."""

    __tablename__ = "station_report"
    __table_args__ = (
        CheckConstraint(_among("kind", REPORT_KINDS), name="kind"),
        CheckConstraint("status IN ('open', 'resolved', 'rejected')", name="status"),
        CheckConstraint("version >= 1", name="version"),
        Index("ix_station_report_station_id", "station_id", "status", "created_at"),
        Index("ix_station_report_client_hash", "client_hash", "created_at"),
        Index("ix_station_report_device_hash", "device_hash", "station_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("station.id"))
    kind: Mapped[str] = mapped_column(Text)
    amenity: Mapped[str | None] = mapped_column(Text, ForeignKey("amenity.code"))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    device_hash: Mapped[str | None] = mapped_column(Text)
    client_hash: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'open'"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: A later word from the same device replaced this one (migration 0012): kept, not
    #: counted. Only ``closed`` reports take part (see ``operations.reports``).
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ReportResolution(Base):
    """An editor's decision on a report; every one is kept (a report may be reopened)."""

    __tablename__ = "report_resolution"
    __table_args__ = (
        CheckConstraint("action IN ('resolved', 'rejected', 'reopened')", name="action"),
        Index("ix_report_resolution_report_id", "report_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    report_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("station_report.id"))
    action: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    editor_key_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("api_key.id"))
    editor: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Confirmation(Base):
    """A worker's one-tap "it is as listed"; refreshes ``station.last_confirmed_at``."""

    __tablename__ = "confirmation"
    __table_args__ = (
        Index("ix_confirmation_station_id", "station_id", "at"),
        Index("ix_confirmation_device_hash", "device_hash", "station_id", "at"),
        Index("ix_confirmation_client_hash", "client_hash", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("station.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    device_hash: Mapped[str | None] = mapped_column(Text)
    client_hash: Mapped[str | None] = mapped_column(Text)
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: A later word from the same device replaced this one (migration 0012): kept, not
    #: counted in ``station.last_confirmed_at``.
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class StationAward(Base):
    """A recognition a station carries, e.g. 最美户外劳动者服务站点 (city, 2025)."""

    __tablename__ = "station_award"
    __table_args__ = (
        CheckConstraint(_among("level", AWARD_LEVELS), name="level"),
        CheckConstraint("year BETWEEN 1949 AND 2200", name="year"),
        Index("ix_station_award_station_id", "station_id", "year"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("station.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    sample: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class AuditLog(Base):
    """Who changed what, when: one row per changed row, appended by triggers (migration 0005).

    ``changes`` maps each changed column to ``[old, new]``; ``import_id`` ties
    the rows of one import together. The table refuses UPDATE and DELETE.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_station_code_id", "station_code", "id"),
        Index("ix_audit_log_import_id", "import_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()"))
    key_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(Text)
    request: Mapped[str | None] = mapped_column(Text)
    import_id: Mapped[Any | None] = mapped_column(UUID(as_uuid=True))
    action: Mapped[str] = mapped_column(Text)
    station_code: Mapped[str | None] = mapped_column(Text)
    record_id: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))


_SHA = "~ '^[0-9a-f]{64}$'"


class Photo(Base):
    """A stored picture by the SHA-256 of its JPEG; the bytes are in the photo store
    (migration 0015). ``public``: staff uploads, and worker photos once approved."""

    __tablename__ = "photo"
    __table_args__ = (
        CheckConstraint(f"sha {_SHA}", name="sha"),
        CheckConstraint(f"thumb_sha {_SHA}", name="thumb_sha"),
        CheckConstraint("width > 0", name="width"),
        CheckConstraint("height > 0", name="height"),
        CheckConstraint("bytes > 0", name="bytes"),
        Index("ix_photo_client_hash", "client_hash", "created_at",
              postgresql_where=text("client_hash IS NOT NULL")),
    )

    sha: Mapped[str] = mapped_column(Text, primary_key=True)
    thumb_sha: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    public: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    client_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())


class StationPhoto(Base):
    """A photo of a station: exterior (外观, first), interior or other; soft-deleted."""

    __tablename__ = "station_photo"
    __table_args__ = (
        CheckConstraint("kind IN ('exterior', 'interior', 'other')", name="kind"),
        Index("ix_station_photo_station_id", "station_id", "kind", "position",
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_station_photo_photo_sha", "photo_sha"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("station.id", ondelete="CASCADE"))
    photo_sha: Mapped[str] = mapped_column(Text, ForeignKey("photo.sha"))
    kind: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    uploaded_by: Mapped[str] = mapped_column(Text)
    uploaded_by_key_id: Mapped[int | None] = mapped_column(Integer)
    uploaded_by_user_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class InspectionPhoto(Base):
    """An inspection's uploaded photos, in order."""

    __tablename__ = "inspection_photo"
    __table_args__ = (Index("ix_inspection_photo_photo_sha", "photo_sha"),)

    inspection_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("inspection.id", ondelete="CASCADE"), primary_key=True)
    photo_sha: Mapped[str] = mapped_column(Text, ForeignKey("photo.sha"))
    position: Mapped[int] = mapped_column(Integer, primary_key=True)


class ReportPhoto(Base):
    """A worker report's one photo, private until a clerk approves it."""

    __tablename__ = "report_photo"
    __table_args__ = (
        CheckConstraint("approved_at IS NULL OR rejected_at IS NULL", name="decided"),
        Index("ix_report_photo_pending", "created_at",
              postgresql_where=text("approved_at IS NULL AND rejected_at IS NULL")),
        Index("ix_report_photo_photo_sha", "photo_sha"),
    )

    report_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("station_report.id", ondelete="CASCADE"), primary_key=True)
    photo_sha: Mapped[str] = mapped_column(Text, ForeignKey("photo.sha"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(Text)
    rejected_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class RoadExtract(Base):
    """The loaded OpenStreetMap extract (one row): file, date, area, counts, speeds
    (migration 0020, ``geo_service.roads``)."""

    __tablename__ = "road_extract"

    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    file_name: Mapped[str] = mapped_column(Text)
    replication_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    extract_date: Mapped[dt.date | None] = mapped_column(Date)
    loaded_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    area_code: Mapped[str | None] = mapped_column(Text)
    ways: Mapped[int] = mapped_column(Integer)
    edges: Mapped[int] = mapped_column(Integer)
    vertices: Mapped[int] = mapped_column(Integer)
    speeds: Mapped[dict[str, Any]] = mapped_column(JSONB)


class RoadVertex(Base):
    """A node where road edges meet: its OSM node id."""

    __tablename__ = "road_vertex"
    __table_args__ = (Index("ix_road_vertex_geom", "geom", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False),
                                      nullable=False)


class RoadEdge(Base):
    """A piece of an OSM way between shared nodes, with its costs in seconds (negative:
    not passable that way, pgRouting's convention)."""

    __tablename__ = "road_edge"
    __table_args__ = (
        CheckConstraint("length_m >= 0", name="length"),
        Index("ix_road_edge_geom", "geom", postgresql_using="gist"),
        Index("ix_road_edge_source", "source"),
        Index("ix_road_edge_target", "target"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    osm_way_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[int] = mapped_column(BigInteger)
    target: Mapped[int] = mapped_column(BigInteger)
    highway: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    length_m: Mapped[float] = mapped_column(Float)
    walk_cost: Mapped[float] = mapped_column(Float)
    ebike_cost: Mapped[float] = mapped_column(Float)
    ebike_reverse_cost: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=False),
                                      nullable=False)


class WaterArea(Base):
    """A water polygon of the loaded extract, for the street basemap (migration 0023,
    ``geo_service.roads.water``): its OSM way (``w``) or relation (``r``)."""

    __tablename__ = "water_area"
    __table_args__ = (
        CheckConstraint("osm_type IN ('w', 'r')", name="osm_type"),
        Index("ix_water_area_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    osm_type: Mapped[str] = mapped_column(Text)
    osm_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
                                      nullable=False)


class BasemapState(Base):
    """One row: the street basemap's version, bumped by statement triggers whenever the
    extract, its water or the admin areas change (the base tiles' ETag)."""

    __tablename__ = "basemap_state"
    __table_args__ = (CheckConstraint("one", name="one"),)

    one: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())
