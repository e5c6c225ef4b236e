"""Alembic environment: the URL comes from core.store.upgrade() or HUB_DATABASE_URL.

On SQLite, foreign keys are not enforced while migrations run (a batch migration copies a table and drops the
old one, which other tables refer to); they are checked once afterwards, and any violation stops the upgrade."""

from alembic import context
from sqlalchemy import text

from core.settings import settings
from core.store import Base, engine

config = context.config
url = config.attributes.get("url") or settings().database_url

with engine(url).connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # outside any transaction: SQLite ignores this pragma inside one
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
        if sqlite and connection.execute(text("PRAGMA foreign_key_check")).first() is not None:
            raise RuntimeError("the migration left rows that break a foreign key; nothing was changed")
    connection.commit()
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
