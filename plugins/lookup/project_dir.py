# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lookup('i2pc.scipion_cloud.project_dir'): the folder ansible-playbook runs in."""

from __future__ import annotations

DOCUMENTATION = r"""
name: project_dir
author: I2PC scipion_cloud maintainers (@I2PC)
short_description: The folder ansible-playbook runs in, the default project folder
description:
  - Returns the absolute path of the folder ansible-playbook was started in, the user's project folder, which holds
    the course files (C(courses/) or C(inventories/courses/)), the generated C(output/) and the course secrets.
  - The course role's C(course_project_dir) defaults to it; set C(-e course_project_dir=PATH) to use another folder.
options: {}
"""

EXAMPLES = r"""
- name: Where this run reads courses and writes output by default
  ansible.builtin.debug:
    msg: "{{ lookup('i2pc.scipion_cloud.project_dir') }}"
"""

RETURN = r"""
_raw:
  description: The folder ansible-playbook runs in, one absolute path.
  type: list
  elements: path
"""

import os
from typing import Any

from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        # Ansible does not change folder while it runs a playbook: this is where the user started it.
        return [os.getcwd()]
