"""Inspections: a client's idempotency key, so a retried submission is recorded once.

An inspector on a weak signal may send the same inspection twice: the phone queues it
when the network drops and sends it again when the signal is back, and a response lost
on the way makes the first send look failed. The console's inspection form gives each
inspection a key (a UUID made by the page); ``idempotency_key`` keeps it, unique, so
the second send finds the first inspection and is answered with it instead of adding
another. NULL for inspections recorded without one (the API, the command line).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE inspection ADD COLUMN idempotency_key uuid")
    op.execute("CREATE UNIQUE INDEX uq_inspection_idempotency_key ON inspection "
               "(idempotency_key) WHERE idempotency_key IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX uq_inspection_idempotency_key")
    op.execute("ALTER TABLE inspection DROP COLUMN idempotency_key")
