"""User sync's own tables: the delta state per tenant and kind, and the per-user detail of each run."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base, UTCDateTime, utcnow


class DeltaState(Base):
    """Where the last complete round of a sync kind left off for a tenant.

    ``options_hash`` is a hash of the filters and mapped fields the round ran with: when it differs from the
    current settings, the stored ``delta_link`` is not used and the next run is a full resync. ``scope_hash``
    is a hash of the selected groups' transitive members (group membership changes are not in users delta).
    ``applied`` keeps the settings the round applied (e.g. the extension group), to undo them after a change.
    """

    __tablename__ = "pbx365_delta_state"
    __table_args__ = (sa.UniqueConstraint("tenant", "kind", name="uq_pbx365_delta_state_tenant_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))
    directory_id: Mapped[str | None] = mapped_column(sa.String(36))
    delta_link: Mapped[str | None] = mapped_column(sa.Text)
    options_hash: Mapped[str | None] = mapped_column(sa.String(64))
    scope_hash: Mapped[str | None] = mapped_column(sa.String(64))
    applied: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    full_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SyncRunItem(Base):
    """What a run did (or, for a dry run or a held run, would do) to one user, with the reason."""

    __tablename__ = "pbx365_sync_run_item"
    __table_args__ = (sa.Index("ix_pbx365_sync_run_item_run_action", "run_id", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(sa.String(36))
    #: created, updated, linked, disabled, deleted, skipped or error.
    action: Mapped[str] = mapped_column(sa.String(16))
    object_id: Mapped[str | None] = mapped_column(sa.String(36))
    user_principal_name: Mapped[str | None] = mapped_column(sa.String(255))
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    extension: Mapped[str | None] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def as_json(self) -> dict:
        return {"action": self.action, "object_id": self.object_id, "user_principal_name": self.user_principal_name,
                "display_name": self.display_name, "extension": self.extension, "detail": self.detail}
