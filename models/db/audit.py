"""The audit log: who changed which watchlist, theme, source or role, when, from what to what."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models.db.tables import AuditLog


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        now: datetime,
        action: str,
        entity_type: str,
        entity_key: str,
        actor_user_id: int | None = None,
        actor_chat_id: int | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        self.session.add(
            AuditLog(
                at=now,
                actor_user_id=actor_user_id,
                actor_chat_id=actor_chat_id,
                action=action,
                entity_type=entity_type,
                entity_key=entity_key,
                before=dict(before) if before is not None else None,
                after=dict(after) if after is not None else None,
            )
        )
        await self.session.flush()
