"""The crawler's components, one job each.

- :mod:`~worker.crawler.ssrf`: which addresses we may connect to, and a transport that connects only there
- :mod:`~worker.crawler.http`: :class:`Fetcher`, one polite, capped, conditional GET with typed errors
- :mod:`~worker.crawler.politeness`: one request at a time per host, spaced, across every worker
- :mod:`~worker.crawler.robots`: robots.txt (RFC 9309) via protego, cached
- :mod:`~worker.crawler.discovery` (pure): report, attachment and listing links from a page
- :mod:`~worker.crawler.antibot` (pure): is this response an anti-bot challenge?
- :mod:`~worker.crawler.archive`: raw bytes stored by sha256

Nothing here is imported eagerly: ``import worker.crawler`` costs nothing.
"""
