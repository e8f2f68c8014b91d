"""A small SCPI command matcher for the simulated SCPI instruments.

Keywords are case-insensitive and take their short form (the upper-case
letters of the pattern) or long form; ``[:NODE]`` is optional; a digit at the
end of a pattern node is its numeric suffix, which the host may omit when it
is 1. Errors go to a standard SCPI queue (``SYST:ERR?``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ErrorQueue", "ScpiCommand", "ScpiDispatcher"]

_NODE = re.compile(r"([A-Z*]+)([a-z]*)(\d*)")
_TOKEN = re.compile(r"([A-Z*]+?)(\d*)")


def _parse_pattern(pattern: str) -> tuple[list[tuple[str, str, str, bool]], bool]:
    query = pattern.endswith("?")
    body = pattern.rstrip("?")
    nodes = []
    for optional, name in re.findall(r"(\[?):?([A-Za-z*]+\d*)\]?", body):
        match = _NODE.fullmatch(name)
        assert match, name
        short, rest, suffix = match.groups()
        nodes.append((short, short + rest.upper(), suffix, bool(optional)))
    return nodes, query


def _node_matches(token: str, node: tuple[str, str, str, bool]) -> bool:
    short, long, suffix, _ = node
    upper = token.upper()
    for word in (long, short):
        if upper == word + suffix or (suffix == "1" and upper == word):
            return True
        if not suffix and upper == word:
            return True
    return False


def _match(tokens: list[str], nodes: list[tuple[str, str, str, bool]]) -> bool:
    if not nodes:
        return not tokens
    node = nodes[0]
    if tokens and _node_matches(tokens[0], node) and _match(tokens[1:], nodes[1:]):
        return True
    return node[3] and _match(tokens, nodes[1:])


@dataclass
class ScpiCommand:
    pattern: str
    handler: Callable[[str], str | None]

    def __post_init__(self) -> None:
        self.nodes, self.query = _parse_pattern(self.pattern)


class ErrorQueue:
    """The SCPI error queue: ``code,"message"``; 0,"No error" when empty."""

    def __init__(self, depth: int = 30) -> None:
        self.depth = depth
        self.entries: list[tuple[int, str]] = []

    def push(self, code: int, message: str) -> None:
        if len(self.entries) < self.depth:
            self.entries.append((code, message))
        else:
            self.entries[-1] = (-350, "Queue overflow")

    def pop(self) -> str:
        if not self.entries:
            return '0,"No error"'
        code, message = self.entries.pop(0)
        return f'{code},"{message}"'

    def clear(self) -> None:
        self.entries.clear()


class ScpiDispatcher:
    """Matches a header against registered patterns and calls the handler."""

    def __init__(self, queue: ErrorQueue) -> None:
        self.queue = queue
        self.commands: list[ScpiCommand] = []
        #: Headers answered as queries even without '?' (some PM100D clients).
        self.implicit_queries: list[ScpiCommand] = []

    def add(self, pattern: str, handler: Callable[[str], str | None]) -> None:
        self.commands.append(ScpiCommand(pattern, handler))

    def dispatch(self, message: str) -> str | None:
        """Execute one program message (units separated by ';'); return the reply."""
        replies = []
        for unit in message.split(";"):
            unit = unit.strip()
            if not unit:
                continue
            header, _, argument = unit.partition(" ")
            is_query = header.endswith("?")
            tokens = [t for t in header.rstrip("?").split(":") if t]
            if header.startswith("*"):
                tokens = [header.rstrip("?")]
            for command in self.commands:
                if command.query == is_query and _match(tokens, command.nodes):
                    reply = command.handler(argument.strip())
                    if reply is not None:
                        replies.append(reply)
                    break
            else:
                self.queue.push(-113, "Undefined header")
        return ";".join(replies) if replies else None
