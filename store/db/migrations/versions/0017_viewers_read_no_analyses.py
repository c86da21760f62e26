"""On PostgreSQL, row-level security keeps analyses from database roles incidex would not let
read them: viewers and roles with no incidex role get no rows of `analyses`, as incidex refuses
them the analyses (they may list incidents and see similar ones, never open an analysis).

RLS is per row, so an incident's own text (description, initial findings) cannot be hidden from
a viewer this way without hiding the whole row, which incidex lists to viewers: that text is
sealed at rest with keys kept outside the database (store/crypto), so a SQL client without the
keyring reads ciphertext; a store that does not encrypt should grant a viewer's database role
SELECT on the list columns only (README, "Roles").

Revision ID: 0017
Revises: 0013
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0013"
branch_labels = None
depends_on = None

# Roles whose incidex permissions include reading analyses (store.access.roles: Action.READ).
READERS = "('analyst', 'lead', 'admin')"


def _replace_analyses_policy(condition: str) -> None:
    op.execute("DROP POLICY analyses_restricted ON analyses")
    op.execute(f"""CREATE POLICY analyses_restricted ON analyses FOR ALL
                   USING ({condition}) WITH CHECK ({condition})""")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace_analyses_policy(
            f"incidex_may_see(incident_id) AND coalesce(incidex_role() IN {READERS}, false)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace_analyses_policy("incidex_may_see(incident_id)")
