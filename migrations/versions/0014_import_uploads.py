"""Console import previews: the uploaded sheet kept until the clerk confirms it (issue 26).

**import_upload** holds one previewed upload of the console's import: the file's bytes
and SHA-256, its name, format and chosen coordinate system, the preview's report (what
the page and the "download with an error column" sheet show) and its fingerprint (the
changes and the stored station versions they were read from). A confirmation reads the
file from here, not from the browser, and applies it only when the changes it finds
match the fingerprint, so nothing is applied that the clerk did not see. Only the
SHA-256 of the token in the page's URL is stored; an upload belongs to the account that
made it and expires (``expires_at``); ``applied_at`` and ``result`` make a second
confirmation answer with the first one's result instead of importing again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE import_upload (
    id bigserial PRIMARY KEY,
    token_sha256 bytea NOT NULL UNIQUE,
    user_id integer NOT NULL REFERENCES staff_user (id) ON DELETE CASCADE,
    filename text NOT NULL,
    format text NOT NULL,
    crs text NOT NULL,
    data bytea NOT NULL,
    file_sha256 bytea NOT NULL,
    report jsonb NOT NULL,
    fingerprint text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    applied_at timestamptz,
    result jsonb
);
CREATE INDEX ix_import_upload_user_id ON import_upload (user_id);
CREATE INDEX ix_import_upload_expires_at ON import_upload (expires_at);
""")


def downgrade() -> None:
    op.execute("DROP TABLE import_upload")
