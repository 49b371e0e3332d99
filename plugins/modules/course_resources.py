#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and change a course's record of what it created (output/<course>/resources.json)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: course_resources
short_description: Read and change the record of what a course created
version_added: 0.2.0
description:
  - A course's record (C(output/<course>/resources.json) on the controller) holds, per provider and per scope (an AWS
    region, an OpenStack site or cloud), the ids of what the course created (machines, addresses, its own security group
    and key pair). What the course may stop, delete or change is what this record names, not whatever carries its tags.
  - Without O(add), O(remove), O(set) and O(found), reads the record and changes nothing.
  - With O(found) (the resources that carry the course's tags, id to name), sorts them into the course's own (recorded,
    adopted with O(adopt), or claimed from O(claim_key)) and the others, and records the adopted and claimed ones.
  - Every change is one read-modify-write under a lock, written to a temporary file and renamed over the record (0600).
  - Runs on the controller (the record lives there); supports check mode.
options:
  path:
    description: The record file.
    type: path
    required: true
  add:
    description: "Ids to add to lists of the scope, for example C({instances: [i-0123456789abcdef0]})."
    type: dict
    default: {}
  remove:
    description: Ids to remove from lists of the scope.
    type: dict
    default: {}
  set:
    description: "Single values of the scope to set, for example C({security_group: {name: madrid-sg, id: sg-1}}); V(null) removes one."
    type: dict
    default: {}
  found:
    description: Resources carrying the course's tags, as a mapping of id to name, to sort into the course's own and the others.
    type: dict
  list_key:
    description: With O(found), the list of the scope that holds the course's ids of this kind (for example C(servers)).
    type: str
    default: servers
  claim_key:
    description:
      - With O(found), a list of the scope naming what a run was about to create. A found resource of such a name that is
        not recorded is the course's (the run was interrupted before recording it); claimed names leave that list.
    type: str
  adopt:
    description: With O(found), ids (or V(all)) to adopt into the record. A string is split on commas.
    type: raw
  refuse_unrecorded:
    description:
      - With O(found), fail when the record file does not exist and resources carry the course's tags that were not
        adopted (a course provisioned before records were kept, or from another controller), naming them.
    type: bool
    default: false
  kind:
    description: What O(found) holds, in messages (for example C(server)).
    type: str
    default: machine
  where:
    description: Where O(found) was looked for, in messages (for example C(cloud fedcloud)).
    type: str
    default: ""
extends_documentation_fragment:
  - i2pc.scipion_cloud.course_record
author:
  - I2PC scipion_cloud maintainers (@I2PC)
"""

EXAMPLES = r"""
- name: Record the course's own security group
  i2pc.scipion_cloud.course_resources:
    path: "{{ course_spec.output_dir }}/resources.json"
    course: "{{ course_spec.name }}"
    provider: aws
    scope: eu-west-1
    set:
      security_group: {name: madrid-sg, id: "{{ group.group_id }}"}

- name: Sort the servers tagged with the course into its own and the others
  i2pc.scipion_cloud.course_resources:
    path: "{{ course_spec.output_dir }}/resources.json"
    course: fedcloud
    provider: openstack
    scope: IISAS-FedCloud-cloud
    found: "{{ dict(servers | map(attribute='id') | zip(servers | map(attribute='name'))) }}"
    list_key: servers
    claim_key: pending_servers
    adopt: "{{ course_adopt | default('') }}"
    refuse_unrecorded: true
    kind: server
    where: cloud fedcloud
  register: ownership
"""

RETURN = r"""
exists:
  description: Whether the record file existed before this call.
  returned: always
  type: bool
record:
  description: The whole record after this call.
  returned: always
  type: dict
entry:
  description: The scope's entry after this call.
  returned: always
  type: dict
owned:
  description: With O(found), the course's own resources, as C({id, name}).
  returned: when O(found) is given
  type: list
  elements: dict
foreign:
  description: With O(found), resources carrying the course's tags that the course did not create, as C({id, name}).
  returned: when O(found) is given
  type: list
  elements: dict
adopted:
  description: With O(found), ids adopted into the record by this call.
  returned: when O(found) is given
  type: list
  elements: str
claimed:
  description: With O(found), ids claimed from O(claim_key) by this call.
  returned: when O(found) is given
  type: list
  elements: str
notice:
  description: With O(found), a sentence naming the resources left alone (empty when there are none).
  returned: when O(found) is given
  type: str
unrecorded:
  description:
    - With O(found), when the record file does not exist and resources carry the course's tags, why the course refuses
      to act on them and what to adopt (what O(refuse_unrecorded) fails with); empty otherwise.
  returned: when O(found) is given
  type: str
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_record as rec


def sort_found(params: dict[str, Any], entry: dict[str, Any], exists: bool, path: str) -> dict[str, Any]:
    """Own and foreign resources of O(found), and the refusal for a course without a record."""
    found = [{"id": str(i), "name": str(n or "")} for i, n in sorted(params["found"].items())]
    adopt = rec.parse_adopt(params["adopt"])
    claimable = entry.get(params["claim_key"], []) if params["claim_key"] else []
    split = rec.owned_and_foreign(found, entry.get(params["list_key"], []), adopt, claimable)
    where = params["where"] or f"{params['provider']} {params['scope']}"
    refusal = ""
    if not exists and split["foreign"]:
        refusal = rec.unrecorded_refusal(params["course"], path, where, params["kind"], split["foreign"])
    notice = rec.foreign_notice(params["course"], path, where, params["kind"], split["foreign"]) if split["foreign"] else ""
    return {**split, "refusal": refusal, "notice": notice}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            course=dict(type="str", required=True),
            provider=dict(type="str", required=True, choices=["aws", "openstack", "local"]),
            scope=dict(type="str", required=True),
            add=dict(type="dict", default={}),
            remove=dict(type="dict", default={}),
            set=dict(type="dict", default={}),
            found=dict(type="dict"),
            list_key=dict(type="str", default="servers", no_log=False),
            claim_key=dict(type="str", no_log=False),
            adopt=dict(type="raw"),
            refuse_unrecorded=dict(type="bool", default=False),
            kind=dict(type="str", default="machine"),
            where=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    try:
        before = rec.read_record(path, params["course"])
        exists = before is not None
        result: dict[str, Any] = {"exists": exists, "changed": False}
        add = {k: list(v or []) for k, v in params["add"].items()}
        remove = {k: list(v or []) for k, v in params["remove"].items()}
        if params["found"] is not None:
            entry = rec.entry_of(before or {}, params["provider"], params["scope"])
            split = sort_found(params, entry, exists, path)
            if split["refusal"] and params["refuse_unrecorded"]:
                module.fail_json(msg=split["refusal"], exists=exists, foreign=split["foreign"])
            new_ids = [i["id"] for i in split["adopted"] + split["claimed"]]
            if new_ids:
                add.setdefault(params["list_key"], []).extend(new_ids)
            if split["claimed"]:
                remove.setdefault(params["claim_key"], []).extend(i["name"] for i in split["claimed"])
            result.update(owned=split["owned"], foreign=split["foreign"], notice=split["notice"], unrecorded=split["refusal"],
                          adopted=[i["id"] for i in split["adopted"]], claimed=[i["id"] for i in split["claimed"]])
        if add or remove or params["set"]:
            record, changed = rec.update_record(
                path, params["course"], params["provider"], params["scope"],
                lambda entry: rec.apply_change(entry, add, remove, params["set"]), check_mode=module.check_mode)
            result["changed"] = changed
        else:
            record = before or rec.empty_record(params["course"])
    except (rec.RecordError, OSError) as error:
        module.fail_json(msg=str(error))
    result.update(record=record, entry=rec.entry_of(record, params["provider"], params["scope"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
