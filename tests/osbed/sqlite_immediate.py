"""
Imported first by the bed's OpenStack processes (wsgi.py, nova_service.py):
every SQLite transaction starts with BEGIN IMMEDIATE.  Nova's api,
conductor, scheduler and compute share one SQLite file; with deferred
transactions a reader that later writes fails at once with "database is
locked" when another process wrote meanwhile (SQLite does not wait then).
Taking the write lock up front makes them wait (busy timeout) instead.
oslo.db already disables pysqlite's implicit BEGIN and emits its own
"BEGIN": that statement becomes "BEGIN IMMEDIATE".
"""
from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "before_cursor_execute", retval=True)
def _begin_immediate(conn, cursor, statement, parameters, context,
                     executemany):
    if conn.dialect.name == "sqlite" and statement.strip().upper() == "BEGIN":
        statement = "BEGIN IMMEDIATE"
    return statement, parameters
