"""A small stateful OpenStack API double for tests (Keystone v3, Nova, Glance, Neutron, Cinder).

It serves, on 127.0.0.1, the subset of the OpenStack APIs that openstacksdk 4.14 and the
openstack.cloud 2.5 modules and inventory plugin call for a course: password, application
credential and EGI Check-in (OIDC access token) authentication, servers with lifecycle
actions and snapshots (createImage), flavours, key pairs, limits, images (listed with
property filters, updated with JSON patches, deleted), networks, ports, security groups,
floating IPs, quotas and a volume listing. State lives in memory; ``OpenStackDouble.cloud`` is the
live state object that tests inspect and seed.

Faults a test asks for through ``OpenStackDouble`` (kept in ``Cloud.faults``, cleared by
``reset()``; see faults.py): bursts of 503 from the API's load balancer, 409 Conflict on server
actions, servers that go to ERROR with a fault (such as "No valid host was found"), and an
instances quota that fills up while a course is being created.

What it does not model: scheduling and capacity (a server lands unless a fault says otherwise),
quotas other than the ones listed in ``Cloud.quotas``, real GPU hardware behind a flavour (the GPU
flavour is a name and extra specs), policy (every token may do everything in its project),
multiple regions, and time (state transitions settle at the next read).
"""

from .server import OpenStackDouble
from .state import Cloud

__all__ = ["Cloud", "OpenStackDouble"]
