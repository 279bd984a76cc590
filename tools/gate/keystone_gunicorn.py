"""gunicorn settings for the gate's keystone, plus the sqlite BEGIN IMMEDIATE shim.

oslo.db opens SQLite transactions with a deferred ``BEGIN``: when two
connections both read and then both write, SQLite fails one of them at once
("database is locked") without waiting out the busy timeout, and keystone
answers 500 with no body. Opening every transaction with ``BEGIN IMMEDIATE``
makes writers queue on the busy timeout instead. gunicorn executes this file
in the master before forking, so the class-level listeners below reach the
engines keystone builds in its worker.
Bind address, pid file and log files come from the command line (run.sh).
"""

import sqlite3
import sys

from sqlalchemy import event
from sqlalchemy.engine import Engine

workers = 1
worker_class = "gthread"
threads = 2
timeout = 120
keepalive = 5
proc_name = "gate-keystone"

# keystone parses sys.argv with oslo.config when its WSGI module is imported;
# gunicorn has already read its own arguments by the time this file runs.
del sys.argv[1:]


@event.listens_for(Engine, "connect")
def _sqlite_busy_timeout(dbapi_connection, connection_record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA busy_timeout = 60000")


@event.listens_for(Engine, "begin")
def _sqlite_begin_immediate(conn):
    # Class-level listeners run before oslo.db's per-engine one, which sends its
    # own BEGIN unless conn.info says a transaction is already open (and clears
    # the flag on commit/rollback).
    if conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.info["in_transaction"] = True
