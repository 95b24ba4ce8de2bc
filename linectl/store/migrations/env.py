"""Alembic's entry point for the store's migrations.

From code (`linectl.store.db.upgrade`) the caller hands over an open
connection in `config.attributes["connection"]`, already inside the
transaction the whole upgrade runs in. From the alembic command line the URL
comes from `-x db=URL`, else `sqlalchemy.url` of alembic.ini.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from linectl.store.db import make_engine
from linectl.store.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them: later migrations use batch_alter_table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("db") or config.get_main_option(
        "sqlalchemy.url", "sqlite:///linectl.db"
    )


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    with make_engine(_url()).connect() as conn:
        _run(conn)
