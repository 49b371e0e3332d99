# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lookup('i2pc.scipion_cloud.course_record'): read a course's record of what it created."""

from __future__ import annotations

DOCUMENTATION = r"""
name: course_record
author: I2PC scipion_cloud maintainers (@I2PC)
short_description: Read a course's record of what it created
description:
  - Reads a course's record (C(output/<course>/resources.json) on the controller) and returns it with the entry of one
    provider and scope, as the M(i2pc.scipion_cloud.course_resources) module returns them when it changes nothing.
  - Reading runs in the controller's own process, where the record lives; changing the record is the module's job
    (under a lock, supporting check mode).
  - Fails, saying what to do, when the file is not a record of this course.
options:
  _terms:
    description: The record file.
    type: path
    required: true
extends_documentation_fragment:
  - i2pc.scipion_cloud.course_record
"""

EXAMPLES = r"""
- name: Read the course's record of what it created in its region
  ansible.builtin.set_fact:
    recorded: >-
      {{ lookup('i2pc.scipion_cloud.course_record', course_spec.output_dir ~ '/resources.json',
      course=course_spec.name, provider='aws', scope='eu-west-1') }}
"""

RETURN = r"""
_raw:
  description: One mapping.
  type: list
  elements: dict
  contains:
    exists:
      description: Whether the record file exists.
      type: bool
    record:
      description: The whole record (an empty record of the course when the file does not exist).
      type: dict
    entry:
      description: The record's entry for O(provider) and O(scope) (empty when there is none).
      type: dict
"""

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_record as rec


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        self.set_options(direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError(f"course_record reads one record file, {len(terms)} were given.")
        path, course = str(terms[0]), self.get_option("course")
        try:
            before = rec.read_record(path, course)
        except (rec.RecordError, OSError) as error:
            raise AnsibleLookupError(str(error)) from None
        record = before if before is not None else rec.empty_record(course)
        entry = rec.entry_of(record, self.get_option("provider"), self.get_option("scope"))
        return [{"exists": before is not None, "record": record, "entry": entry}]
