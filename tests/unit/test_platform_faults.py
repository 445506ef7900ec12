"""Fault grammar, parse errors and thread-safe hit counting."""

from __future__ import annotations

import threading

import pytest

from harness.errors import PlatformError
from harness.platform.faults import FaultAction, FaultRule, FaultSet


@pytest.mark.parametrize(
    ("text", "server", "endpoint", "action", "count"),
    [
        ("wireserver:health=500x3", "wireserver", "health", FaultAction("status", status=500), 3),
        ("imds:instance=503", "imds", "instance", FaultAction("status", status=503), None),
        ("wireserver:goalstate=drop x2", "wireserver", "goalstate", FaultAction("drop"), 2),
        ("hostgaplugin:vmSettings=delay5", "hostgaplugin", "vmSettings", FaultAction("delay", delay_s=5.0), None),
        ("hostgaplugin:vmsettings=delay0.25x1", "hostgaplugin", "vmSettings", FaultAction("delay", delay_s=0.25), 1),
        ("imds:instance=require-header:X-Custom", "imds", "instance",
         FaultAction("require-header", header="X-Custom"), None),
        ("WireServer:*=410", "wireserver", "*", FaultAction("status", status=410), None),
        ("imds:instance=429 x 4", "imds", "instance", FaultAction("status", status=429), 4),
    ],
)
def test_rule_grammar(text: str, server: str, endpoint: str, action: FaultAction, count: int | None) -> None:
    rule = FaultRule.parse(text)
    assert (rule.server, rule.endpoint, rule.action, rule.count) == (server, endpoint, action, count)
    assert FaultRule.parse(rule.describe()) == rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wireserver-health=500", "malformed"),
        ("azure:health=500", "unknown server 'azure'"),
        ("wireserver:heath=500", "unknown wireserver endpoint 'heath'"),
        ("wireserver:health=200", "unknown action '200'"),
        ("wireserver:health=explode", "unknown action 'explode'"),
        ("wireserver:health=500x0", "count must be at least 1"),
    ],
)
def test_bad_rules_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(PlatformError, match=message):
        FaultRule.parse(text)


def test_parse_reports_every_bad_rule() -> None:
    with pytest.raises(PlatformError) as caught:
        FaultSet.parse(["imds:instance=500", "x:y=1", "imds:nope=500"])
    assert "'x:y=1'" in caught.value.message and "'imds:nope=500'" in caught.value.message


def test_counted_rule_applies_to_first_n_then_next_rule() -> None:
    faults = FaultSet.parse(["wireserver:health=500x2", "wireserver:health=drop x1"])
    seen = [faults.match("wireserver", "health") for _ in range(5)]
    assert [a.describe() if a else None for a in seen] == ["500", "500", "drop", None, None]
    assert faults.match("wireserver", "goalstate") is None
    assert faults.match("imds", "health") is None
    assert faults.hits() == {"wireserver:health=500x2": 2, "wireserver:health=dropx1": 1}


def test_always_rule_and_wildcard() -> None:
    faults = FaultSet.parse(["hostgaplugin:*=503"])
    for endpoint in ("versions", "status", "vmSettings") * 3:
        action = faults.match("hostgaplugin", endpoint)
        assert action is not None and action.status == 503
    assert faults.hits() == {"hostgaplugin:*=503": 9}


def test_require_header_hits_only_when_the_header_is_missing() -> None:
    faults = FaultSet.parse(["imds:instance=require-header:X-Custom"])
    assert faults.match("imds", "instance", {"x-custom": "1", "Metadata": "true"}) is None
    action = faults.match("imds", "instance", {"Metadata": "true"})
    assert action == FaultAction("require-header", header="X-Custom")
    assert faults.match("imds", "instance") is not None  # no headers given: missing
    assert faults.hits() == {"imds:instance=require-header:X-Custom": 2}


def test_hit_counting_is_thread_safe() -> None:
    faults = FaultSet.parse(["wireserver:goalstate=500x100"])
    results: list[FaultAction | None] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            action = faults.match("wireserver", "goalstate")
            with lock:
                results.append(action)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for r in results if r is not None) == 100
    assert len(results) == 400
    assert faults.hits() == {"wireserver:goalstate=500x100": 100}
