"""The SQL store: every filing with its history, findings with their review, events as rows.

Modules, by what they hold:

- ``models`` — the tables (SQLModel): agencies, source_documents, reports,
  report_revisions, cells, findings, outbox, deliveries, subscriptions, sites, pages.
  Times are aware UTC (``models.utc_now``).
- ``engine`` — ``make_engine(url)``, ``open_store(url)`` (schema on first use of a fresh
  database), ``upgrade_schema`` (Alembic, migrations in ``migrations/``).
- ``agencies`` — agency identity (normalised name + region code) and the site registry link.
- ``ingest`` — ``ingest_document(session, data, …, today, read)``: the one write path for
  reports, idempotent on (source, sha256); ``ingest_paths`` for local files.
- ``findings`` — ``reconcile_findings``: findings by fingerprint, review status kept.
- ``missing`` — ``check_missing_reports(session, today)`` for the beat task.
- ``outbox`` — stable event ids, outbox rows, subscriptions, webhook deliveries (store side of
  ``worker.alerts.relay``).
- ``queries`` — the read side behind ``xxgk reports|findings|alerts``.
- ``crawl_state`` — the crawler's page state machine (owned by the crawler).

Nothing here opens a connection at import time.
"""
