"""The schema, as numbered migrations: both backends apply the same list, once each, in order.

A migration is a list of statements in the SQL both SQLite and PostgreSQL speak; `{id}` stands
for an auto-numbered key column. A statement wrapped in `Only` runs on that dialect alone (a
change the other backend does not need). Applied versions are kept in `kb_schema`. To change the
schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Only:
    """A statement for one dialect alone ("sqlite", "postgresql"); other backends skip it."""

    dialect: str
    text: str


Statement = str | Only

MIGRATIONS: list[list[Statement]] = [
    # 1: jobs, their attempts, status history, saved files, and small facts (kb_meta)
    [
        """CREATE TABLE kb_jobs (
            key TEXT PRIMARY KEY,
            request TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            kind TEXT NOT NULL,
            route TEXT,
            provider TEXT,
            state TEXT NOT NULL,
            error TEXT,
            out_dir TEXT,
            saved_at DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION
        )""",
        "CREATE INDEX kb_jobs_state ON kb_jobs (state, updated_at)",
        "CREATE INDEX kb_jobs_created ON kb_jobs (created_at)",
        """CREATE TABLE kb_attempts (
            external_id TEXT PRIMARY KEY,
            job_key TEXT NOT NULL REFERENCES kb_jobs (key),
            seq INTEGER NOT NULL,
            provider TEXT NOT NULL,
            state TEXT NOT NULL,
            task_id TEXT,
            status TEXT,
            status_rank INTEGER NOT NULL DEFAULT -1,
            task TEXT,
            quoted TEXT,
            quoted_usd DOUBLE PRECISION,
            charged TEXT,
            charged_usd DOUBLE PRECISION,
            error TEXT,
            error_type TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX kb_attempts_job ON kb_attempts (job_key, seq)",
        "CREATE INDEX kb_attempts_task ON kb_attempts (task_id)",
        "CREATE INDEX kb_attempts_open ON kb_attempts (provider, state)",
        """CREATE TABLE kb_history (
            id {id},
            job_key TEXT NOT NULL,
            external_id TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            provider_status TEXT
        )""",
        "CREATE INDEX kb_history_job ON kb_history (job_key, id)",
        """CREATE TABLE kb_files (
            job_key TEXT NOT NULL,
            path TEXT NOT NULL,
            url TEXT NOT NULL,
            format TEXT,
            bytes BIGINT,
            sha256 TEXT,
            at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (job_key, path)
        )""",
        "CREATE TABLE kb_meta (name TEXT PRIMARY KEY, value TEXT)",
    ],
    # callbacks (issue 9): each delivery received once (deduplication), and deliveries about
    # tasks this store does not know (orphans), kept rather than lost
    [
        """CREATE TABLE kb_deliveries (
            provider TEXT NOT NULL,
            delivery_id TEXT NOT NULL,
            body_sha256 TEXT NOT NULL,
            task_id TEXT,
            status TEXT,
            outcome TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (provider, delivery_id)
        )""",
        "CREATE INDEX kb_deliveries_task ON kb_deliveries (provider, task_id)",
        """CREATE TABLE kb_orphans (
            id {id},
            provider TEXT NOT NULL,
            delivery_id TEXT NOT NULL,
            task_id TEXT,
            status TEXT,
            body TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX kb_orphans_task ON kb_orphans (provider, task_id)",
    ],
    # limits (issue 11, store/limits.py): the admission lock row, provider cooldowns with
    # their expiry, the queue of creates waiting for a vendor slot, indexes for budget sums
    [
        "CREATE TABLE kb_limits (name TEXT PRIMARY KEY, version BIGINT NOT NULL DEFAULT 0)",
        "INSERT INTO kb_limits (name, version) VALUES ('admission', 0)",
        """CREATE TABLE kb_cooldowns (
            provider TEXT PRIMARY KEY,
            until DOUBLE PRECISION NOT NULL,
            reason TEXT,
            set_by TEXT,
            at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE kb_slot_waiters (
            id {id},
            provider TEXT NOT NULL,
            external_id TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL,
            since DOUBLE PRECISION NOT NULL,
            expires DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX kb_slot_waiters_provider ON kb_slot_waiters (provider, id)",
        # Cover the budget sums (store/limits.py): overall and per provider, each read from its
        # index alone over the window's range.
        "CREATE INDEX kb_attempts_spend"
        " ON kb_attempts (created_at, state, quoted_usd, charged_usd)",
        "CREATE INDEX kb_attempts_spend_by_provider"
        " ON kb_attempts (provider, created_at, state, quoted_usd, charged_usd)",
    ],
    # 4 (issue 13, the store's share of a run: fewer pages written per commit).
    # - `kb_attempts_open` holds open attempts alone (a partial index): it stays as small as
    #   what is in flight instead of growing with every attempt ever made, each state change
    #   rewrites one entry of a page always in cache, and the slot count, the budget summary's
    #   providers and `open_attempts` read it instead of scanning a provider's every attempt.
    # - `kb_attempts_task` holds attempts with a task id alone: an attempt written down before
    #   its create no longer puts an entry among the NULLs, to be moved out again when the task
    #   id comes (two pages for one); a lookup by task id (`task_id = ?`) implies NOT NULL.
    # - `kb_attempts_spend` goes: a budget over every provider (or a route) is summed from
    #   `kb_attempts_spend_by_provider`, one range per provider (store/limits.py). It was one
    #   more index holding `state`, rewritten at each state change of every attempt.
    # - On SQLite, `kb_history.id` becomes a plain rowid key. AUTOINCREMENT wrote its counter (a
    #   row of `sqlite_sequence`, one more page) in every transaction that recorded a status;
    #   history rows are never deleted, so a plain rowid (largest + 1) numbers them in the same
    #   order. The ids kept are the same. PostgreSQL's BIGSERIAL has no such cost.
    [
        "DROP INDEX kb_attempts_open",
        "CREATE INDEX kb_attempts_open ON kb_attempts (provider, created_at)"
        " WHERE state IN ('intent', 'sent', 'created')",
        "DROP INDEX kb_attempts_task",
        "CREATE INDEX kb_attempts_task ON kb_attempts (task_id) WHERE task_id IS NOT NULL",
        "DROP INDEX kb_attempts_spend",
        Only(
            "sqlite",
            """CREATE TABLE kb_history_new (
            id INTEGER PRIMARY KEY,
            job_key TEXT NOT NULL,
            external_id TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            provider_status TEXT
        )""",
        ),
        Only(
            "sqlite",
            "INSERT INTO kb_history_new (id, job_key, external_id, at, status, provider_status)"
            " SELECT id, job_key, external_id, at, status, provider_status FROM kb_history",
        ),
        Only("sqlite", "DROP TABLE kb_history"),
        Only("sqlite", "ALTER TABLE kb_history_new RENAME TO kb_history"),
        Only("sqlite", "CREATE INDEX kb_history_job ON kb_history (job_key, id)"),
    ],
    # 5 (cooldowns counted across processes, store/limits.py): a provider's failures in a row,
    # counted in its `kb_cooldowns` row by every process, so that `allowed_fails` of them start
    # its cooldown whichever processes failed (one-shot `generate` runs included). A row with
    # `until` 0 holds a count alone; a success seen after failures sets `fails` back to 0.
    [
        "ALTER TABLE kb_cooldowns ADD COLUMN fails INTEGER NOT NULL DEFAULT 0",
    ],
]
