"""A simulated government web for benchmarks and chaos runs (loopback only, bounded).

- :mod:`bench.simweb.portal` (pure): hosts on ``127.0.1.N`` with TRS- and Hanweb-style report
  columns, report pages and DOCX/PDF attachments built from seed reports, GBK hosts,
  ETag/Last-Modified, robots.txt with Crawl-delay; the ground truth (``truth()``), including
  the anomalies seeded into the reports.
- :mod:`bench.simweb.server`: one asyncio process serving every host, per-host faults on demand
  (429 + Retry-After, 503 bursts, 412/521 challenges, WAF pages, trickle, resets, hangs) and
  the server-side request log.
- :mod:`bench.simweb.analysis` (pure): violations, efficiency, 304 ratio and recall from that log.
- :mod:`bench.simweb.process`: :class:`SimWebProcess`, the server as a subprocess with its
  control API.

Run one by hand: ``python -m bench.simweb --hosts 5 --reports 10`` (see ``--help``).
"""
