"""A fault-injecting reverse proxy in front of moto: AWS as it misbehaves, for tests and the bench.

Boto3 and Ansible get the proxy's URL as their AWS endpoint; the proxy forwards each call
to a moto server unless a rule of its rule file (rules.py) answers first: throttling
(EC2's ``RequestLimitExceeded``), no capacity (``InsufficientInstanceCapacity`` for a zone
and/or an instance type), a dropped connection, or a delay. It logs every call, so a
test can wait for a point of a run (the first RunInstances answered, say) and kill the
run there.

What it does not model: AWS's real rate limits (throttling is random, at the rule's
share, not a token bucket), capacity that comes back by itself, partial launches
(MinCount < MaxCount), errors of signatures or credentials (moto checks none), and any
service's own faults beyond these four kinds.
"""

from .rules import RuleError, load_rules, parse_rules, write_rules
from .server import FaultProxy

__all__ = ["FaultProxy", "RuleError", "load_rules", "parse_rules", "write_rules"]
