#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the quotas and usage of the OpenStack project a cloud entry logs in to."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: openstack_quota_info
short_description: Quotas and usage of the current OpenStack project (instances, cores, RAM, floating IPs)
version_added: 0.1.0
description:
  - Reads the compute limits of the project the cloud entry is scoped to (Nova C(GET /limits), allowed for every
    project member) and the floating IP quota and usage (Neutron C(GET /quotas/<project>/details); when a site's
    policy refuses it, the plain quota and a count of the project's floating IPs).
  - A limit of C(-1) means unlimited. Changes nothing; supports check mode.
  - Unlike M(openstack.cloud.quota), it needs no admin rights and no project lookup, which EGI FedCloud users
    do not have.
options: {}
extends_documentation_fragment:
  - openstack.cloud.openstack
requirements:
  - openstacksdk >= 1.0.0
author:
  - I2PC scipion_cloud maintainers (@I2PC)
"""

EXAMPLES = r"""
- name: Read the project's quotas
  i2pc.scipion_cloud.openstack_quota_info:
    cloud: IISAS-FedCloud-cloud
  register: quota

- name: Show the free instances
  ansible.builtin.debug:
    msg: "{{ quota.quota.instances.limit - quota.quota.instances.used }} instances free"
"""

RETURN = r"""
project_id:
  description: The project the quotas belong to.
  returned: always
  type: str
quota:
  description: Limit and usage per resource; C(limit) is C(-1) when unlimited.
  returned: always
  type: dict
  contains:
    instances: {description: Servers., type: dict, sample: {limit: 2, used: 0}}
    cores: {description: vCPUs., type: dict, sample: {limit: 12, used: 0}}
    ram_mb: {description: RAM in MiB., type: dict, sample: {limit: 24576, used: 0}}
    floating_ips: {description: Floating IPs allocated to the project., type: dict, sample: {limit: 2, used: 0}}
"""

from typing import Any

from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.openstack_quota import project_quota
from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule


class OpenStackQuotaInfoModule(OpenStackModule):
    """Compute limits and floating IP quota of the current project."""

    argument_spec: dict[str, Any] = {}
    module_kwargs = {"supports_check_mode": True}

    def run(self) -> None:
        project_id, quota = project_quota(self.conn)
        self.exit_json(changed=False, project_id=project_id, quota=quota)


def main() -> None:
    module = OpenStackQuotaInfoModule()
    module()


if __name__ == "__main__":
    main()
