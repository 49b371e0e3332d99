"""Misbehaviour of the OpenStack double that a test asks for: each fault is used up as it fires.

The faults live in ``Cloud.faults`` (so ``OpenStackDouble.reset()`` clears them) and are read
and changed under ``Cloud.lock``, like the rest of the state. ``fired`` lists, in order, what
each fault did, for tests to check that the misbehaviour really happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
# What a load balancer in front of an overloaded Nova API answers (HAProxy's page).
UNAVAILABLE_PAGE = ("<html><body><h1>503 Service Unavailable</h1>\n"
                    "No server is available to handle this request.\n</body></html>\n")


@dataclass
class Burst:
    """The next ``count`` requests of ``method`` (any when None) under ``path`` answer 503."""

    count: int
    method: str | None
    path: str

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and self.method in (None, method) and path.startswith(self.path)


@dataclass
class Conflict:
    """The next ``count`` server actions named ``action`` (any when None) answer 409."""

    count: int
    action: str | None
    task_state: str


@dataclass
class ServerFault:
    """The next ``count`` servers created (of ``flavor`` only, when given) go to ERROR with this fault."""

    count: int
    flavor: str | None
    code: int
    message: str


@dataclass
class Faults:
    """Every fault a test has set and not yet used up."""

    bursts: list[Burst] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    server_faults: list[ServerFault] = field(default_factory=list)
    # After this many more servers are created, the instances quota drops to what is then in use.
    quota_full_after: int | None = None
    fired: list[str] = field(default_factory=list)

    def unavailable(self, method: str, path: str) -> bool:
        """Whether this request gets a 503 (and uses up one answer of the burst)."""
        burst = next((b for b in self.bursts if b.matches(method, path)), None)
        if burst is None:
            return False
        burst.count -= 1
        self.fired.append(f"503 {method} {path}")
        return True

    def conflict(self, action: str) -> str | None:
        """The task state that blocks this server action, or None."""
        found = next((c for c in self.conflicts if c.count > 0 and c.action in (None, action)), None)
        if found is None:
            return None
        found.count -= 1
        self.fired.append(f"409 {action}")
        return found.task_state

    def server_fault(self, flavor: str) -> dict[str, object] | None:
        """The fault a server of this flavour is created with, or None (it goes ACTIVE)."""
        found = next((f for f in self.server_faults if f.count > 0 and f.flavor in (None, flavor)), None)
        if found is None:
            return None
        found.count -= 1
        self.fired.append(f"ERROR {flavor}: {found.message}")
        return {"code": found.code, "message": found.message}

    def quota_full_now(self) -> bool:
        """Count one created server; True when the instances quota is to be full from now on."""
        if self.quota_full_after is None:
            return False
        self.quota_full_after -= 1
        if self.quota_full_after > 0:
            return False
        self.quota_full_after = None
        self.fired.append("instances quota full")
        return True
