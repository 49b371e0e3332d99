"""The rule file of the fault proxy: which requests get which fault.

A YAML (or JSON) mapping::

    seed: 7                      # optional; the random draws of throttle and drop (default 0)
    rules:                       # applied in order to every request
      - throttle: {percent: 20, actions: all}
      - capacity: {zone: eu-west-1a}
      - capacity: {instance_type: g4dn.xlarge, zone: eu-west-1b}
      - drop: {percent: 5, actions: [DescribeInstances], processed: true}
      - delay: {seconds: 2.5, actions: [RunInstances], after: 2, times: 1}
      - delay: {seconds: 60, actions: [RunInstances], at: answer}

Kinds:

- ``throttle``: the request is answered, without reaching the cloud, with the service's
  throttling error (EC2: HTTP 503 ``RequestLimitExceeded``; other Query services: HTTP 400
  ``Throttling``; JSON services: HTTP 400 ``ThrottlingException``).
- ``capacity``: a RunInstances whose zone (``Placement.AvailabilityZone``, or the zone of
  its subnet) and/or instance type match is answered with HTTP 500
  ``InsufficientInstanceCapacity``, as EC2 does. A rule with only ``zone`` takes every
  type out of that zone; with only ``instance_type``, that type out of every zone. A
  request that names neither zone nor subnet lets the cloud pick a zone: it is never
  refused for a zone (only for an instance type out everywhere).
- ``drop``: the connection is closed without an answer. With ``processed: true`` the
  request reaches the cloud first and only its answer is lost (the nasty case).
- ``delay``: with ``at: request`` (the default) the request waits ``seconds`` before it
  goes on (to the next rules, then the cloud); a request whose caller hangs up meanwhile
  never reaches the cloud. With ``at: answer`` the cloud gets the request at once and the
  answer waits: a caller killed meanwhile never learns what the cloud did.

Common keys: ``actions`` (a list of API action names, or ``all``; default ``all``),
``percent`` (throttle and drop: the share of matching requests hit, 0-100, default 100),
``after`` (leave the first N matching requests alone), ``times`` (apply at most N times).
A delay or capacity rule matches every matching request (no percent). The first rule that
answers (throttle, capacity, drop) decides; delays add up on the way.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = ("throttle", "capacity", "drop", "delay")
COMMON_KEYS = {"actions", "after", "times"}
KIND_KEYS = {
    "throttle": COMMON_KEYS | {"percent"},
    "drop": COMMON_KEYS | {"percent", "processed"},
    "delay": COMMON_KEYS | {"seconds", "at"},
    "capacity": {"zone", "instance_type", "after", "times"},
}


class RuleError(ValueError):
    """The rule file says something the proxy cannot do."""


@dataclass
class Rule:
    """One rule of the file, with its own counters and random stream."""

    kind: str
    index: int
    actions: frozenset[str] | None  # None: every action
    percent: float = 100.0
    seconds: float = 0.0
    processed: bool = False
    at: str = "request"
    zone: str = ""
    instance_type: str = ""
    after: int = 0
    times: int | None = None
    seed: int = 0
    matched: int = 0
    applied: int = 0
    _streams: dict[str, random.Random] = field(default_factory=dict, repr=False)

    def concerns(self, action: str) -> bool:
        if self.kind == "capacity":
            return action == "RunInstances"
        return self.actions is None or action in self.actions

    def draw(self, action: str) -> bool:
        """Whether this matching request is hit: counters, then the seeded draw of its action."""
        self.matched += 1
        if self.matched <= self.after or (self.times is not None and self.applied >= self.times):
            return False
        if self.percent < 100:
            stream = self._streams.setdefault(action, random.Random(f"{self.seed}:{self.index}:{action}"))
            if stream.random() * 100 >= self.percent:
                return False
        self.applied += 1
        return True

    def describe(self) -> str:
        if self.kind == "capacity":
            return "capacity " + " ".join(f"{k}={v}" for k, v in (("zone", self.zone), ("instance_type", self.instance_type)) if v)
        if self.kind == "delay":
            return f"delay {self.seconds:g}s" + (" of the answer" if self.at == "answer" else "")
        return f"{self.kind} {self.percent:g}%" + (" processed" if self.processed else "")


@dataclass
class RuleSet:
    """The rules of one version of the file; a new file version starts fresh counters."""

    rules: list[Rule]
    seed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def _actions(value: Any, where: str) -> frozenset[str] | None:
    if value is None or value == "all":
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where}: actions must be 'all' or a list of API action names (e.g. [RunInstances])")
    return frozenset(value)


def _number(spec: dict[str, Any], key: str, where: str, default: float, low: float, high: float | None = None) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise RuleError(f"{where}: {key} must be a number {bound}, not {value!r}")
    return float(value)


def parse_rule(entry: Any, index: int, seed: int) -> Rule:
    where = f"rule {index + 1}"
    if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in KINDS:
        raise RuleError(f"{where}: each rule is a mapping with one key, one of {', '.join(KINDS)}; got {entry!r}")
    kind, spec = next(iter(entry.items()))
    spec = spec or {}
    if not isinstance(spec, dict):
        raise RuleError(f"{where}: {kind} takes a mapping of settings, not {spec!r}")
    unknown = set(spec) - KIND_KEYS[kind]
    if unknown:
        raise RuleError(f"{where}: {kind} does not know {', '.join(sorted(unknown))} (it knows {', '.join(sorted(KIND_KEYS[kind]))})")
    times = spec.get("times")
    rule = Rule(
        kind=kind, index=index, seed=seed,
        actions=_actions(spec.get("actions"), where),
        percent=_number(spec, "percent", where, 100, 0, 100),
        seconds=_number(spec, "seconds", where, 0, 0),
        processed=bool(spec.get("processed", False)),
        at=str(spec.get("at", "request")),
        zone=str(spec.get("zone") or ""),
        instance_type=str(spec.get("instance_type") or ""),
        after=int(_number(spec, "after", where, 0, 0)),
        times=None if times is None else int(_number(spec, "times", where, 0, 0)),
    )
    if kind == "capacity" and not (rule.zone or rule.instance_type):
        raise RuleError(f"{where}: capacity needs a zone, an instance_type, or both")
    if kind == "delay" and "seconds" not in spec:
        raise RuleError(f"{where}: delay needs seconds")
    if rule.at not in ("request", "answer"):
        raise RuleError(f"{where}: at must be request or answer, not {rule.at!r}")
    return rule


def parse_rules(data: Any) -> RuleSet:
    """A RuleSet from the file's content (None or empty: no rules)."""
    if data is None:
        return RuleSet(rules=[])
    if not isinstance(data, dict) or set(data) - {"seed", "rules"}:
        raise RuleError("the rule file is a mapping with 'rules' (a list) and optionally 'seed' (an integer)")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RuleError(f"seed must be an integer, not {seed!r}")
    entries = data.get("rules") or []
    if not isinstance(entries, list):
        raise RuleError("rules must be a list")
    return RuleSet(rules=[parse_rule(entry, i, seed) for i, entry in enumerate(entries)], seed=seed)


def load_rules(path: Path) -> RuleSet:
    """Read a rule file (YAML, of which JSON is a subset); a missing or empty file means no rules."""
    if not path.exists():
        return RuleSet(rules=[])
    return parse_rules(yaml.safe_load(path.read_text()))


def write_rules(path: Path, rules: list[dict[str, Any]], seed: int = 0) -> None:
    """Write a rule file atomically (validated first), so that a running proxy never reads half of one."""
    parse_rules({"seed": seed, "rules": rules})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"seed": seed, "rules": rules}, indent=2) + "\n")
    tmp.replace(path)
