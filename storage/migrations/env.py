"""Alembic environment: always runs on a connection handed over by `storage.db.upgrade`."""

from alembic import context

from storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - we never run alembic's CLI without the app
    raise RuntimeError("run migrations with `restart-tutor db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite needs "move and copy" for most ALTER TABLE
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
