"""The composition root: settings in, a ready engine out. Nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.content import Catalog, load_catalog
from bot.i18n import compile_catalogs, warm
from bot.tutor.engine import Tutor
from bot.tutor.ports import Clock, utcnow
from bot.tutor.throttle import Throttle
from storage.checkpoints import WalCheckpointer
from storage.db import create_engine, sqlite_database, upgrade
from storage.repository import SqlStore


@dataclass
class App:
    settings: Settings
    catalog: Catalog
    engine: AsyncEngine
    store: SqlStore
    tutor: Tutor
    checkpointer: WalCheckpointer | None = None

    async def close(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        await self.engine.dispose()


async def build_app(settings: Settings, clock: Clock = utcnow, serving: bool = False) -> App:
    """Load and check the content first (a broken file stops us before anything starts), then
    compile translations, open the database and migrate it. `serving` (the bot, not a one-off
    command): on SQLite, WAL checkpoints run on a worker thread (`storage.checkpoints`), and every
    language's translations and formats are loaded before the first update (`bot.i18n.warm`)."""
    catalog = load_catalog(settings.lessons_dir)
    if settings.locales_dir.is_dir():
        compile_catalogs(settings.locales_dir)
    if serving:
        warm(settings.locales_dir)
    database = sqlite_database(settings.database_url) if serving else None
    checkpointer = WalCheckpointer(database) if database not in (None, ":memory:") else None
    engine = create_engine(settings.database_url, manual_checkpoints=checkpointer is not None)
    await upgrade(engine)
    store = SqlStore(engine)
    tutor = Tutor(
        catalog,
        store,
        clock=clock,
        locales_dir=settings.locales_dir,
        admins=frozenset(f"tg:{user}" for user in settings.admins),
        throttle=Throttle.parse(settings.throttle),
    )
    if checkpointer is not None:
        checkpointer.start()
    return App(settings, catalog, engine, store, tutor, checkpointer)
