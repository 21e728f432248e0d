"""lapsed sessions: lock sessions whose lease ran out, kept for their orphans

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lapsed_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("lapsed_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("lapsed_sessions")
