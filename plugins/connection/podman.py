# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""containers.podman.podman with pipelining: a module runs in one podman exec."""

from __future__ import annotations

DOCUMENTATION = r"""
name: podman
short_description: Run tasks in a podman container, each module in one podman exec
description:
  - The connection of C(containers.podman.podman), with pipelining. Without it, each module task runs five
    C(podman exec) (make a temporary folder, read the home folder, make the module executable, run it, remove
    the folder); with it, one C(podman exec --interactive) that hands the module to Python on standard input.
  - C(containers.podman.podman) turned pipelining off because C(podman exec) without C(--interactive) drops
    standard input. This connection passes C(--interactive) whenever there is input.
  - A container that is gone or not running makes the host unreachable (podman's own errors), as SSH does.
  - Used for the seats of local courses, image builders on podman and the test containers.
author: I2PC scipion_cloud maintainers (@I2PC)
options:
  remote_addr:
    description: The name or ID of the container.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description: User (name or UID) that runs the commands in the container.
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments of the podman command line.
    default: ""
    ini:
      - section: defaults
        key: podman_extra_args
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman program.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  pipelining:
    description: Hand modules to the container's Python on standard input (one C(podman exec) per module).
    type: boolean
    default: true
    vars:
      - name: ansible_pipelining
"""

import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

PODMAN_FAILED = (125, 255)


class Connection(PodmanConnection):
    """containers.podman.podman, its exec given standard input when there is any."""

    transport = "i2pc.scipion_cloud.podman"
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        exec_args = ["exec"]
        if in_data is not None:
            exec_args.append("--interactive")
        if self.user:
            exec_args.extend(("--user", self.user))
        rc, stdout, stderr = self._podman(exec_args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
        # podman's own failures (no such container: 125; a container that is not running: 255)
        # mean the machine is gone, as SSH's 255 does: unreachable, not a failed task.
        if rc in PODMAN_FAILED and stderr.startswith(b"Error: "):
            raise AnsibleConnectionFailure(f"podman exec in {self._container_id}: {to_native(stderr).strip()}")
        return rc, stdout, stderr
