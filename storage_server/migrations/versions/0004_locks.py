"""locks: lock sessions with a lease, and the advisory locks they hold

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lock_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "file_locks",
        sa.Column(
            "ino",
            sa.BigInteger,
            sa.ForeignKey("inodes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.Integer, primary_key=True),
        sa.Column(
            "session_id",
            sa.String(32),
            sa.ForeignKey("lock_sessions.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
        sa.Column("owner", sa.BigInteger, primary_key=True),
        sa.Column("range_start", sa.BigInteger, primary_key=True),
        sa.Column("range_end", sa.BigInteger, nullable=False),
        sa.Column("exclusive", sa.Boolean, nullable=False),
        sa.Column("pid", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_locks")
    op.drop_table("lock_sessions")
