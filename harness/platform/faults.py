"""Scripted failures for the fake platform's endpoints.

Grammar (one rule per `--fault` argument; case-insensitive except header names keep their spelling):

    RULE     := SERVER ":" ENDPOINT "=" ACTION [ WS? "x" COUNT ]
    SERVER   := imds | wireserver | hostgaplugin
    ENDPOINT := an endpoint name from ENDPOINTS[SERVER], or "*" for every endpoint of that server
    ACTION   := STATUS            answer with this HTTP status (400-599, e.g. 410, 429, 500, 503)
              | "drop"            close the connection without answering (the client sees an empty reply)
              | "delay" SECONDS   wait SECONDS (float) before answering normally
              | "require-header:" NAME   answer 400 unless the request carries header NAME
    COUNT    := positive integer: the rule applies to the first COUNT matching requests; no suffix = always

Examples: `wireserver:health=500x3`, `imds:instance=503`, `wireserver:goalstate=drop x2`,
`hostgaplugin:vmSettings=delay5`, `imds:instance=require-header:X-Custom`.
Rules are tried in the order given; the first one with budget left applies, so `health=500x2` followed by
`health=drop x1` gives two 500s, one dropped connection, then normal answers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.errors import PlatformError

# Endpoint names per server, as the servers classify requests (see imds.py, wireserver.py, hostgaplugin.py).
ENDPOINTS: dict[str, tuple[str, ...]] = {
    "imds": ("instance", "versions", "reprovisiondata", "other"),
    "wireserver": (
        "versions", "goalstate", "hostingEnvironmentConfig", "sharedConfig", "extensionsConfig", "fullConfig",
        "certificates", "config", "health", "telemetrydata", "roleProperties", "HealthService", "statusblob", "other",
    ),
    "hostgaplugin": ("versions", "health", "vmSettings", "status", "vmAgentLog", "other"),
}

_RULE_RE = re.compile(
    r"^\s*(?P<server>[a-z]+)\s*:\s*(?P<endpoint>[A-Za-z*]+)\s*=\s*(?P<action>.+?)(?:\s*x\s*(?P<count>\d+))?\s*$",
    re.IGNORECASE,
)
_ACTION_RE = re.compile(
    r"^(?:(?P<status>[45]\d\d)|(?P<drop>drop)|delay\s*(?P<delay>\d+(?:\.\d+)?)|require-header:\s*(?P<header>[!-~]+))$",
    re.IGNORECASE,
)
_HINT = "use SERVER:ENDPOINT=ACTION[xN], e.g. wireserver:health=500x3 (see harness/platform/faults.py)"


@dataclass(frozen=True)
class FaultAction:
    """What to do to one request: kind is 'status', 'drop', 'delay' or 'require-header'."""

    kind: str
    status: int = 0
    delay_s: float = 0.0
    header: str = ""

    def describe(self) -> str:
        if self.kind == "status":
            return str(self.status)
        if self.kind == "delay":
            return f"delay{self.delay_s:g}"
        if self.kind == "require-header":
            return f"require-header:{self.header}"
        return "drop"


@dataclass(frozen=True)
class FaultRule:
    """One parsed rule; count None means 'always'."""

    server: str
    endpoint: str
    action: FaultAction
    count: int | None = None

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """Parse one rule of the grammar in the module docstring; PlatformError names the bad part."""
        match = _RULE_RE.match(text)
        if not match:
            raise PlatformError(f"fault rule {text!r} is malformed", _HINT)
        server = match["server"].lower()
        if server not in ENDPOINTS:
            raise PlatformError(f"fault rule {text!r}: unknown server {server!r}", f"use one of {', '.join(ENDPOINTS)}")
        endpoint = _canonical_endpoint(server, match["endpoint"], text)
        count = int(match["count"]) if match["count"] else None
        if count == 0:
            raise PlatformError(f"fault rule {text!r}: count must be at least 1", "drop the xN suffix for 'always'")
        return cls(server, endpoint, _parse_action(match["action"], text), count)

    def describe(self) -> str:
        suffix = f"x{self.count}" if self.count is not None else ""
        return f"{self.server}:{self.endpoint}={self.action.describe()}{suffix}"

    def applies_to(self, server: str, endpoint: str) -> bool:
        return self.server == server and self.endpoint in ("*", endpoint)


def _canonical_endpoint(server: str, name: str, text: str) -> str:
    if name == "*":
        return name
    for known in ENDPOINTS[server]:
        if known.lower() == name.lower():
            return known
    raise PlatformError(
        f"fault rule {text!r}: unknown {server} endpoint {name!r}", f"use one of {', '.join(ENDPOINTS[server])} or *"
    )


def _parse_action(text: str, rule: str) -> FaultAction:
    match = _ACTION_RE.match(text.strip())
    if not match:
        hint = "use a 4xx/5xx status, drop, delay<seconds> or require-header:NAME"
        raise PlatformError(f"fault rule {rule!r}: unknown action {text!r}", hint)
    if match["status"]:
        return FaultAction("status", status=int(match["status"]))
    if match["delay"]:
        return FaultAction("delay", delay_s=float(match["delay"]))
    if match["header"]:
        return FaultAction("require-header", header=match["header"])
    return FaultAction("drop")


class FaultSet:
    """An ordered list of rules with thread-safe hit counting."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self.rules = list(rules)
        self._hits = [0] * len(self.rules)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> FaultSet:
        """Parse every rule; all malformed rules are reported at once."""
        rules: list[FaultRule] = []
        problems: list[str] = []
        for text in texts:
            try:
                rules.append(FaultRule.parse(text))
            except PlatformError as exc:
                problems.append(exc.message)
        if problems:
            raise PlatformError("; ".join(problems), _HINT)
        return cls(rules)

    def match(self, server: str, endpoint: str, headers: Mapping[str, str] | None = None) -> FaultAction | None:
        """The action for this request, or None; counts the hit. Headers given as None count as all missing."""
        present = {name.lower() for name in (headers or {})}
        with self._lock:
            for index, rule in enumerate(self.rules):
                if not rule.applies_to(server, endpoint):
                    continue
                if rule.count is not None and self._hits[index] >= rule.count:
                    continue
                if rule.action.kind == "require-header" and rule.action.header.lower() in present:
                    continue
                self._hits[index] += 1
                return rule.action
        return None

    def hits(self) -> dict[str, int]:
        """Hits so far per rule, keyed by the rule's canonical text."""
        with self._lock:
            return {rule.describe(): self._hits[index] for index, rule in enumerate(self.rules)}

    def describe(self) -> list[str]:
        return [rule.describe() for rule in self.rules]
