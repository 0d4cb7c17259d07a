"""The composition root: settings in, a ready engine out. Nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.content import Catalog, load_catalog
from bot.i18n import compile_catalogs
from bot.tutor.engine import Tutor
from bot.tutor.ports import Clock, utcnow
from bot.tutor.throttle import Throttle
from storage.db import create_engine, upgrade
from storage.repository import SqlStore


@dataclass
class App:
    settings: Settings
    catalog: Catalog
    engine: AsyncEngine
    store: SqlStore
    tutor: Tutor

    async def close(self) -> None:
        await self.engine.dispose()


async def build_app(settings: Settings, clock: Clock = utcnow) -> App:
    """Load and check the content first (a broken file stops us before anything starts), then
    compile translations, open the database and migrate it."""
    catalog = load_catalog(settings.lessons_dir)
    if settings.locales_dir.is_dir():
        compile_catalogs(settings.locales_dir)
    engine = create_engine(settings.database_url)
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
    return App(settings, catalog, engine, store, tutor)
