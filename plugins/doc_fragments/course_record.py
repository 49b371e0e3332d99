# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options that name one entry of a course's record: the course_resources module and the course_record lookup."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  course:
    description: The course's name; the record must be this course's.
    type: str
    required: true
  provider:
    description: The provider section of the record.
    type: str
    required: true
    choices: [aws, openstack, local]
  scope:
    description: The scope within the provider (an AWS region, an OpenStack site or cloud name).
    type: str
    required: true
"""
