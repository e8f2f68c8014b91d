"""The ASGI application of ``labctl web`` (Starlette): the page, its assets, the API.

Routes (``docs/web.md`` documents each):

- ``GET /`` - the page; ``GET /static/...`` - its CSS and JavaScript (in the package)
- ``GET /api`` - what the API offers
- ``GET /api/live`` - the live state; ``GET /api/stream`` - the same, as server-sent events
- ``GET /api/runs``, ``GET /api/runs/{run_id}``, ``GET /api/queue``
- ``POST /api/runs/{run_id}/stop``, ``POST /api/queue/{id}/cancel``,
  ``POST /api/queue/{id}/retry`` - ``Authorization: Bearer <token>``
- ``GET /reports/{run_id}`` - a run's HTML report

Every read of the store runs in a worker thread: a slow disk slows the
answer, never the server. The page's CSP allows its own assets only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import InputError, LabctlError
from .actions import Actions, Outcome, token_status
from .live import RESYNC, LiveFeed, dumps
from .reader import BenchReader
from .views import Views

__all__ = ["STATIC", "SecurityHeaders", "WebSettings", "create_app", "is_loopback_name"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
#: The page: its own scripts, styles and connections only (no CDN, nothing inline).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none';"
    " frame-ancestors 'none'; form-action 'none'"
)
#: A run's report: one self-contained file (inline styles, images as data: URLs).
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
)
#: Sent with every stream now and then, so proxies and browsers keep it open (s).
KEEPALIVE = 15.0
#: A POST body (``{"who": ...}``) is small.
MAX_BODY = 4096


@dataclass
class WebSettings:
    """What the application serves, and whom it lets in."""

    reader: BenchReader
    #: Where reports are kept (``<data>/reports``); None: made on request only.
    reports: Path | None
    #: None: no token could be made (an unwritable data directory) - no actions.
    token: str | None
    actions: Actions | None
    #: Bound to loopback: answer only requests addressed to a loopback name.
    loopback_only: bool = True
    #: How often the live state is refreshed (s).
    period: float = 0.25
    #: Things to close at shutdown.
    closing: list[Any] = field(default_factory=list)


#: Host names a loopback-bound server answers to (besides loopback addresses).
LOOPBACK_NAMES = ("localhost",)


def _host_name(header: str) -> str:
    """The host of a Host header, without its port (``[::1]:8765`` -> ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_loopback_name(header: str) -> bool:
    name = _host_name(header.strip().lower())
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class SecurityHeaders:
    """ASGI middleware: ``nosniff`` and no referrer on every answer; loopback names only.

    ``loopback_only``: a request whose Host is not a loopback name is refused
    (400) - the server is bound to loopback, so such a request came through a
    name someone else controls.
    """

    def __init__(self, app: Any, *, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.loopback_only:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not is_loopback_name(host):
                body = b'{"message":"this server answers to 127.0.0.1 and localhost only"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _problem(status: int, message: str) -> Response:
    return _json({"message": message}, status)


def create_app(settings: WebSettings) -> Starlette:
    """The application over ``settings.reader``; actions through ``settings.actions``."""
    views = Views(settings.reader)
    feed = LiveFeed(views, period=settings.period)
    page = (STATIC / "index.html").read_bytes()
    report_lock = threading.Lock()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(feed.refresh, force=True)
        poller = asyncio.create_task(feed.poll())
        app.state.feed = feed
        try:
            yield
        finally:
            feed.close()
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            for thing in (settings.reader, settings.actions, *settings.closing):
                if thing is not None:
                    with contextlib.suppress(Exception):
                        thing.close()

    async def index(request: Request) -> Response:
        return HTMLResponse(
            page, headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-store"}
        )

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    async def api_index(request: Request) -> Response:
        return _json(
            {
                "endpoints": [
                    "GET /api/live",
                    "GET /api/stream (text/event-stream)",
                    "GET /api/runs?limit=N",
                    "GET /api/runs/{run_id}",
                    "GET /api/queue",
                    "POST /api/runs/{run_id}/stop",
                    "POST /api/queue/{id}/cancel",
                    "POST /api/queue/{id}/retry",
                    "GET /reports/{run_id}",
                ],
                "auth": "POST needs Authorization: Bearer <token> (the data directory's"
                " web-token); GET needs nothing",
                "units": 'every number with its unit: {"value": v, "unit": u}; counts and'
                " ids are plain integers; times ISO 8601 UTC",
                "docs": "docs/web.md",
                "benches": settings.reader.benches(),
            }
        )

    async def live(request: Request) -> Response:
        return _json(await run_in_threadpool(feed.state))

    async def stream(request: Request) -> Response:
        queue = feed.subscribe()

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n\n" + await run_in_threadpool(feed.snapshot)
                while not feed.closing:
                    try:
                        message = await asyncio.wait_for(queue.get(), KEEPALIVE)
                    except TimeoutError:
                        yield b": keepalive\n\n"
                        continue
                    if message is None:
                        return
                    if message is RESYNC:
                        message = await run_in_threadpool(feed.snapshot)
                    yield message
            finally:
                feed.unsubscribe(queue)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def runs(request: Request) -> Response:
        text = request.query_params.get("limit", "20")
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 500:
            return _problem(400, f"limit: {text[:20]!r} is not a whole number from 1 to 500")
        found = await run_in_threadpool(views.runs, int(text))
        return _json({"runs": found, "benches": settings.reader.benches()})

    async def run_detail(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            detail = await run_in_threadpool(views.run_detail, run_id)
        except InputError as exc:
            return _problem(400 if "begins several" not in str(exc) else 409, str(exc))
        if detail is None:
            return _problem(404, f"no such run {run_id[:64]!r}")
        return _json(detail)

    async def queue(request: Request) -> Response:
        entries = await run_in_threadpool(views.queue)
        night = (await run_in_threadpool(feed.state))["status"].get("night")
        return _json({"entries": entries, "night": night})

    async def _action(request: Request, action: str, target: str, call: Any) -> Response:
        origin = request.client.host if request.client is not None else "unknown"
        actions = settings.actions
        if actions is None or settings.token is None:
            return _problem(405, "this server takes no actions (it has no web token)")
        status = token_status(request.headers.get("authorization"), settings.token)
        if status != 200:
            refusal = await run_in_threadpool(actions.refused, action, target, origin, status)
            headers = {"WWW-Authenticate": 'Bearer realm="labctl"'} if status == 401 else {}
            return Response(
                dumps(refusal.body),
                status_code=status,
                media_type="application/json",
                headers=headers,
            )
        body = await request.body()
        if len(body) > MAX_BODY:
            return _problem(413, f"the body is over {MAX_BODY} bytes")
        who: Any = None
        if body.strip():
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                return _problem(400, 'the body is not JSON (give {"who": "your name"} or none)')
            if not isinstance(parsed, dict):
                return _problem(400, 'the body is not a JSON object ({"who": "your name"})')
            who = parsed.get("who")
        outcome: Outcome = await run_in_threadpool(call, who=who, origin=origin)
        if outcome.status < 300:
            # Every page sees what was done now, not at the next poll.
            message = await run_in_threadpool(feed.refresh, force=True)
            if message is not None:
                feed.publish(message)
        return _json(outcome.body, outcome.status)

    async def stop(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        actions = settings.actions

        def call(who: Any, origin: str) -> Outcome:
            assert actions is not None
            return actions.stop(run_id, who=who, origin=origin)

        return await _action(request, "stop", f"run {run_id[:64]}", call)

    def _entry_action(kind: str) -> Any:
        async def handler(request: Request) -> Response:
            text = request.path_params["entry"]
            if not (text.isascii() and text.isdigit() and len(text) <= 18):
                return _problem(404, f"queue entry {text[:20]!r}: not a queue entry number")
            entry = int(text)
            actions = settings.actions

            def call(who: Any, origin: str) -> Outcome:
                assert actions is not None
                method = actions.cancel if kind == "cancel" else actions.retry
                return method(entry, who=who, origin=origin)

            return await _action(request, kind, f"queue #{entry}", call)

        return handler

    def _report_html(run_id: str) -> bytes | None:
        from ..names import RUN_ID, name_problem

        if name_problem(RUN_ID, run_id) is not None:
            return None
        run = settings.reader.run(run_id)
        if run is None:
            return None
        run_id = run["run_id"]
        if settings.reports is not None and run["status"] != "running":
            kept = settings.reports / f"{run_id}.html"
            ended = run.get("ended_at")
            try:
                written = datetime.fromtimestamp(kept.stat().st_mtime, UTC)
                if ended is None or written.isoformat() >= ended:
                    return kept.read_bytes()
            except OSError:
                pass  # not written (or not readable): made now, below
        from ..report import write_report

        # Made in a temporary directory: the page never writes into the data directory.
        with report_lock, tempfile.TemporaryDirectory(prefix="labctl-web-") as scratch:
            path, _ = write_report(settings.reader, run_id, Path(scratch) / "report.html")
            return path.read_bytes()

    async def report(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            html = await run_in_threadpool(_report_html, run_id)
        except InputError as exc:
            return _problem(400, str(exc))
        except LabctlError as exc:
            return _problem(500, f"the report could not be made: {exc}")
        if html is None:
            return _problem(404, f"no such run {run_id[:64]!r}")
        return HTMLResponse(
            html, headers={"Content-Security-Policy": REPORT_POLICY, "Cache-Control": "no-store"}
        )

    middleware = [Middleware(SecurityHeaders, loopback_only=settings.loopback_only)]
    routes = [
        Route("/", index),
        Route("/favicon.ico", no_icon),
        Route("/api", api_index),
        Route("/api/live", live),
        Route("/api/stream", stream),
        Route("/api/runs", runs),
        Route("/api/runs/{run_id}", run_detail),
        Route("/api/runs/{run_id}/stop", stop, methods=["POST"]),
        Route("/api/queue", queue),
        Route("/api/queue/{entry}/cancel", _entry_action("cancel"), methods=["POST"]),
        Route("/api/queue/{entry}/retry", _entry_action("retry"), methods=["POST"]),
        Route("/reports/{run_id}", report),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.feed = feed
    app.state.views = views
    return app
