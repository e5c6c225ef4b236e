"""Alembic environment: the URL comes from hub.store.upgrade() or HUB_DATABASE_URL."""

from alembic import context

from hub.config import settings
from hub.store import Base, engine

config = context.config
url = config.attributes.get("url") or settings().database_url

with engine(url).connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
