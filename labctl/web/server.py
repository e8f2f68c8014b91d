"""``labctl web``: open the store, make or read the token, bind, say where, serve (uvicorn).

Binds 127.0.0.1 unless ``--host`` says otherwise; bound anywhere else it
says, on one line, that the page is reachable from the network. Bound to
loopback, it answers only requests addressed to a loopback name
(``127.0.0.1``, ``localhost``, ``::1``): a web page elsewhere cannot reach it
through a host name of its own (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "bind", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def bind(host: str, port: int) -> tuple[socket.socket, bool]:
    """A listening socket on ``host``:``port``, and whether it is loopback only.

    Raises :class:`InputError` (one line) for a name that does not resolve
    or a port that is taken.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"{host!r}: cannot resolve it ({exc})", field="--host") from None
    family, kind, proto, _, address = found[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"cannot listen on {host} port {port}: {exc.strerror or exc}", field="--port"
        ) from None
    sock.setblocking(False)
    try:
        loopback = ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    return sock, loopback


def _no_lab_store(data_dir: Path) -> None:
    if str(data_dir).lower().startswith(("postgresql:", "postgres:")):
        raise InputError(
            "labctl web serves a bench's data directory; serving the lab store is not built"
            " yet (its reader plugs in behind labctl.web.reader.BenchReader: docs/web.md)",
            field="--data",
        )


def serve(
    data_dir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    echo: Callable[[str], None] = print,
    period: float = 0.25,
) -> None:
    """Serve the page of ``data_dir`` until interrupted (Ctrl-C, SIGTERM)."""
    _no_lab_store(data_dir)
    try:
        import uvicorn

        from .app import WebSettings, create_app
    except ImportError as exc:
        raise InputError(
            f"labctl web needs starlette and uvicorn ({exc}): pip install 'starlette' 'uvicorn'",
            field="web",
        ) from None
    from .actions import TOKEN_FILE, Actions, ensure_token
    from .reader import SqliteReader

    # The writable store first (it checks the file), then the read-only one:
    # see SqliteReader(checked=True).
    actions: Actions | None = Actions(data_dir)
    reader: SqliteReader | None = None
    token: str | None = None
    unwritable = ""
    try:
        reader = SqliteReader(data_dir, checked=True)
        try:
            token, made = ensure_token(data_dir)
        except OSError as exc:
            # A data directory this user cannot write (a read-only disk, a copy on a
            # share): the page is served all the same, and takes no actions.
            made, unwritable = False, exc.strerror or str(exc)
        sock, loopback = bind(host, port)
    except BaseException:
        if reader is not None:
            reader.close()
        if actions is not None:
            actions.close()
        raise
    shown_host = f"[{host}]" if ":" in host else host
    port = int(sock.getsockname()[1])
    url = f"http://{shown_host}:{port}/"
    echo(f"labctl web: {url}  (data {reader.location}; bench {reader.bench})")
    token_path = Path(data_dir) / TOKEN_FILE
    if token is None:
        assert actions is not None
        actions.close()
        actions = None
        echo(f"web token: cannot be made in {token_path} ({unwritable})")
        echo("read-only: stop, cancel and retry are off")
    else:
        if made:
            echo(f"web token (shown this once; kept in {token_path}, mode 0600): {token}")
        else:
            echo(f"web token: in {token_path} (shown at its first start only)")
        echo(
            "read-only without the token; stop, cancel and retry need it (the page asks;"
            " scripts send Authorization: Bearer <token>)"
        )
    if not loopback:
        echo(
            f"labctl web: bound to {host}: REACHABLE FROM THE NETWORK - anyone who can reach"
            f" port {port} can read the page and the reports (formulations included);"
            " actions need the token"
        )
    app = create_app(
        WebSettings(
            reader=reader,
            reports=Path(data_dir) / "reports",
            token=token,
            actions=actions,
            loopback_only=loopback,
            period=period,
        )
    )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config, app.state.feed)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    echo("labctl web: stopped")


class _Server:
    """uvicorn's server, ending the page's streams at once when told to stop."""

    def __init__(self, config: Any, feed: Any) -> None:
        import uvicorn

        feed_ = feed

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                loop = getattr(self, "_labctl_loop", None)
                if loop is not None:
                    loop.call_soon_threadsafe(feed_.close)
                super().handle_exit(sig, frame)

            async def serve(self, sockets: Any = None) -> None:
                import asyncio

                self._labctl_loop = asyncio.get_running_loop()
                await super().serve(sockets=sockets)

        self._server = Server(config)

    def run(self, sockets: list[socket.socket]) -> None:
        self._server.run(sockets=sockets)
