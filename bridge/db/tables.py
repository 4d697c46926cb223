"""The one way a store class is built: from the engine, with sessions whose
rows stay readable after commit. The core's ``Store`` and every bot's store
(offline messages, attachments, mails, video calls, transcript archives) are
:class:`TableStore` subclasses."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker


class TableStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.session = async_sessionmaker(engine, expire_on_commit=False)
