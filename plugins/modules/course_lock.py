#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the course_lock action (plugins/action/course_lock.py), which runs on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
module: course_lock
short_description: Let one run at a time change a course
description:
  - Takes or releases the lock of a course, a JSON file (normally C(output/<course>/run.lock))
    that names the run holding it - the C(ansible-playbook) process, by its pid and its start
    time (field 22 of C(/proc/<pid>/stat)) - with the machine's boot id, the host, the user,
    the playbook and when the run started (UTC).
  - playbooks/provision.yml, teardown.yml and lifecycle.yml take it before they change
    anything and release it at their end, so that two runs never change a course at once.
  - With O(state=acquired), a lock held by another run that is still going fails the task,
    naming that run and saying to remove the file if it is not running any more. The lock is
    taken atomically (a complete file is hard-linked into place), so two runs started together
    never both get it. Taking it again in the same run changes nothing.
  - A stale lock is broken with a warning that names its old holder, and taken - its holder
    is stale when its process is gone (a run that failed, was interrupted or killed), when
    its pid now belongs to another process (another start time), or when this machine was
    restarted since.
  - A lock taken on another host is never broken, since this controller cannot tell whether
    that run is still going; the task fails and says so.
  - With O(state=released), the lock is removed only if this run holds it; a lock of another
    run is left as it is, with a warning.
  - In check mode the lock is not taken (a check-mode run changes nothing, so it cannot
    disturb another run) and a stale lock is not broken, but the task still fails while
    another run holds the lock.
  - C(changed) is always false - the lock is bookkeeping of the run, not a change to the
    course - so a second run of a playbook still reports changed=0.
  - Runs on the controller only (an action plugin); Linux only (it reads C(/proc)).
version_added: 0.1.0
author: I2PC scipion_cloud maintainers (@I2PC)
options:
  path:
    description:
      - The lock file. Its folder is made (mode 0700) when it does not exist.
    type: path
    required: true
  course:
    description: The course's name, for the messages.
    type: str
    required: true
  state:
    description:
      - V(acquired) takes the lock, V(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  playbook:
    description: The playbook that takes the lock, named in the lock and in other runs' messages.
    type: str
    default: ""
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: The lock is neither taken nor broken in check mode; another run's live lock still fails the task.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - A run killed with SIGKILL leaves its lock; the next run finds its process gone and breaks it.
"""

EXAMPLES = r"""
- name: Let no other run change the course until this one ends
  i2pc.scipion_cloud.course_lock:
    path: "{{ course_spec.output_dir }}/run.lock"
    course: "{{ course_spec.name }}"
    playbook: provision.yml

- name: Let other runs change the course again
  i2pc.scipion_cloud.course_lock:
    path: "{{ course_spec.output_dir }}/run.lock"
    course: "{{ course_spec.name }}"
    state: released
"""

RETURN = r"""
lock:
  description:
    - The lock this run holds (or, in check mode, would hold); after O(state=released), the lock removed.
    - Empty after O(state=released) when this run held no lock.
  returned: success
  type: dict
  sample:
    pid: 1234
    start_time: 48213377
    boot_id: 0e3c2c4a-5d0f-4e5b-9f7c-1a2b3c4d5e6f
    host: controller
    user: root
    playbook: provision.yml
    course: madrid
    started: "2026-12-02T08:30:00Z"
broken:
  description: The stale lock that was broken (in check mode, that would be broken); empty when none was.
  returned: success
  type: dict
released:
  description: Whether this run's lock was removed (O(state=released)).
  returned: success
  type: bool
"""
