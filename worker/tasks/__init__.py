"""Thin Celery tasks, one module per queue.

Each task decodes ids, runs one pipeline stage, maps errors and enqueues the follow-ups.

==========================  ======  ==================================================
task                        queue   does
==========================  ======  ==================================================
xxgk.crawl.discover_site    crawl   seed a site's entry pages, enqueue due fetches
xxgk.crawl.discover_sites   crawl   fan out discover_site over the registry
xxgk.crawl.sweep_stuck      crawl   re-enqueue lost or due pages (the SQL frontier)
xxgk.crawl.check_missing    crawl   missing_report for tracked agencies past deadline
xxgk.fetch.fetch_page       fetch   one conditional GET; listing → links; else ingest
xxgk.parse.ingest_page      parse   extract, parse, check, store, outbox (one page)
xxgk.alerts.relay_outbox    alerts  publish unpublished outbox rows
==========================  ======  ==================================================

All logic lives in :mod:`worker.pipeline`; :class:`~worker.tasks.base.PipelineTask` holds
the error mapping (TransientError → retry with the delay the error names, PermanentError →
recorded, finish) and the follow-up dispatch.
"""
