"""snapshots: a kind and a content source for volumes, the snapshots table,
and the gate between copies and the blob collector

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-13
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every volume there is so far is a user's volume, which the default says.
    op.add_column(
        "volumes", sa.Column("kind", sa.String(16), nullable=False, server_default="volume")
    )
    op.add_column("volumes", sa.Column("source_kind", sa.String(16), nullable=True))
    op.add_column("volumes", sa.Column("source_id", sa.String(36), nullable=True))
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("source_volume_id", sa.String(36), nullable=False, index=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("used_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    gate = op.create_table(
        "collector_gate",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(gate, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    # The hidden volumes go with their namespaces; without the kind column they
    # would look like users' volumes.
    op.execute("DELETE FROM volumes WHERE kind = 'snapshot'")
    op.drop_table("collector_gate")
    op.drop_table("snapshots")
    # Not batch mode: on SQLite it copies the table and drops the old one, and
    # that drop would cascade to every inode. SQLite drops plain columns itself.
    for column in ("source_id", "source_kind", "kind"):
        op.drop_column("volumes", column)
