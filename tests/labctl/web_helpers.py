"""Shared pieces of the ``labctl web`` tests: runs on the virtual bench, the app, JSON checks."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client; httpx works with every version.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from labctl.web.actions import Actions, ensure_token
from labctl.web.app import WebSettings, create_app
from labctl.web.reader import SqliteReader
from protocols.runner import RunOutcome, RunRequest, start
from tests.protocols.conftest import BASELINE, FAST


def sim_request(data: Path, *extra: str, protocol: str = "contrast-curve") -> RunRequest:
    overrides = (*FAST, *extra) if protocol == "contrast-curve" else extra
    return RunRequest(
        protocol=protocol, data_dir=data, formulation=BASELINE, sim=True, overrides=overrides
    )


def sim_run(data: Path, *extra: str, **kw: Any) -> RunOutcome:
    """A whole run on the in-process virtual bench (about 0.3 s)."""
    return start(sim_request(data, *extra), **kw)


@contextmanager
def web_client(data: Path, *, loopback_only: bool = True) -> Iterator[tuple[TestClient, str]]:
    """The app of ``data`` (lifespan and poller running) and its token, as ``labctl web``
    makes them."""
    actions = Actions(data)
    reader = SqliteReader(data, checked=True)
    token, _ = ensure_token(data)
    app = create_app(
        WebSettings(
            reader=reader,
            reports=data / "reports",
            token=token,
            actions=actions,
            loopback_only=loopback_only,
            period=0.05,
        )
    )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, token


def numbers_without_units(
    value: Any, path: str = "$", parent: dict[str, Any] | None = None
) -> list[str]:
    """Where a JSON document has a real number with no unit beside it.

    A float must sit in an object that has ``unit`` (a quantity, an estimate),
    or in a list of points whose object has ``unit`` and ``t_unit`` (a trace).
    Integers are counts and ids.
    """
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, float) and "unit" not in value:
                found.append(f"{path}.{key}")
            else:
                found += numbers_without_units(item, f"{path}.{key}", value)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, float):
                if parent is None or "unit" not in parent or "t_unit" not in parent:
                    found.append(f"{path}[{index}]")
            else:
                found += numbers_without_units(item, f"{path}[{index}]", parent)
    return found
