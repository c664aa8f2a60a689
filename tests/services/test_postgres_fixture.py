"""The PostgreSQL fixtures work: a real server, a fresh database per test, isolated, dropped."""

from __future__ import annotations

import psycopg

from postgres_support import create_database, drop_database


def test_postgres_url_is_a_fast_loopback_only_server(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://postgres@127.0.0.1:")
    names = ("fsync", "synchronous_commit", "full_page_writes", "listen_addresses",
             "unix_socket_directories", "server_version_num")  # fmt: skip
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(names)]
        ).fetchall()
    settings = dict(rows)
    assert settings["fsync"] == settings["synchronous_commit"] == "off"
    assert settings["full_page_writes"] == "off"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["unix_socket_directories"] == ""
    assert int(settings["server_version_num"]) >= 150000


def test_postgres_db_is_empty_and_holds_a_table(postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
        conn.execute("CREATE TABLE task (id text PRIMARY KEY, status text NOT NULL)")
        conn.execute("INSERT INTO task VALUES (%s, %s)", ("t-1", "succeeded"))
    with psycopg.connect(postgres_db) as conn:  # committed: visible to a new connection
        assert conn.execute("SELECT id, status FROM task").fetchall() == [("t-1", "succeeded")]


def test_two_databases_are_isolated_and_dropped(postgres_url: str, postgres_db: str) -> None:
    other = create_database(postgres_url)
    try:
        assert other != postgres_db
        with psycopg.connect(postgres_db) as conn:
            conn.execute("CREATE TABLE task (id text)")
            conn.execute("INSERT INTO task VALUES ('only-here')")
        with psycopg.connect(other) as conn:
            found = conn.execute("SELECT to_regclass('public.task')").fetchone()
            assert found == (None,)
        left_open = psycopg.connect(other)  # dropping must not wait for it
    finally:
        drop_database(postgres_url, other)
    left_open.close()
    with psycopg.connect(postgres_url) as conn:
        name = other.rsplit("/", 1)[1]
        gone = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name])
        assert gone.fetchone() == (0,)
