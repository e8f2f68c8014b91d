"""``labctl web``: a live page for the bench and the night, and the small HTTP API under it.

The modules, one idea each:

- :mod:`labctl.web.reader` - what the page reads, behind a small interface
  (:class:`~labctl.web.reader.BenchReader`): one bench's SQLite store, opened
  read-only, short queries, never a transaction held; the lab store
  (PostgreSQL, every bench) can stand behind the same interface.
- :mod:`labctl.web.views` - the JSON the API gives: units beside every
  number, headline figures, the estimated end of the night.
- :mod:`labctl.web.live` - one poller for all open pages: it notices a
  change in the store, reads what is new once, and sends the same bytes to
  every page (server-sent events).
- :mod:`labctl.web.actions` - the token, and the three actions (stop a run
  at its next safe point, cancel or retry a queue entry), each recorded.
- :mod:`labctl.web.app` - the ASGI application (Starlette).
- :mod:`labctl.web.server` - binding, what is printed at start, uvicorn.

Starlette and uvicorn are imported by :mod:`~labctl.web.app` and
:mod:`~labctl.web.server` only: ``import labctl`` and ``labctl --help`` stay
light. Every asset of the page (HTML, CSS, the JavaScript and its plotter)
is in ``labctl/web/static``: nothing is fetched from elsewhere. The API:
``docs/web.md``.
"""

from __future__ import annotations

__all__: list[str] = []
