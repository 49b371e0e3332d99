#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capture an OpenStack server as an image (Nova createImage), with properties."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: openstack_server_image
short_description: Capture an OpenStack server as an image (a snapshot) with properties, and wait until it is active
version_added: 0.1.0
description:
  - Asks Nova to snapshot O(server) into a Glance image named O(name) (the C(createImage) server action), with
    O(properties) set on the image, and waits until the image is C(active) (with O(wait)).
  - Stop the server first for a consistent disk; Nova snapshots an C(ACTIVE) or C(SHUTOFF) server.
  - An image named O(name) that exists already in the project is returned as it is (C(changed=false)), so that a
    re-run does not capture twice. Supports check mode.
  - M(openstack.cloud.server_action) has no C(createImage) action, hence this module.
options:
  server:
    description: Name or id of the server to capture.
    type: str
    required: true
  name:
    description: Name of the new image.
    type: str
    required: true
  properties:
    description:
      - Image properties (Nova passes them to Glance as the image's metadata). Values are turned into strings;
        Nova refuses keys or values longer than 255 characters.
    type: dict
    default: {}
extends_documentation_fragment:
  - openstack.cloud.openstack
requirements:
  - openstacksdk >= 1.0.0
author:
  - I2PC scipion_cloud maintainers (@I2PC)
"""

EXAMPLES = r"""
- name: Capture the stopped builder
  i2pc.scipion_cloud.openstack_server_image:
    cloud: IISAS-FedCloud-cloud
    server: image-builder-scipion3-20260101120000-0a1b
    name: i2pc-cloud-training-scipion-3-20260101-120000-v0.1.0
    properties:
      ManagedBy: scipion_cloud
      Profile: scipion-3
    timeout: 3600
  register: captured
"""

RETURN = r"""
image:
  description: The image, as the image service shows it (properties at the top level of C(properties)).
  returned: always, except in check mode when the image does not exist yet
  type: dict
  sample: {id: 0c1d2e3f-..., name: i2pc-cloud-training-scipion-3-20260101-120000-v0.1.0, status: active}
"""

from typing import Any

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule


class OpenStackServerImageModule(OpenStackModule):

    argument_spec: dict[str, Any] = {
        "server": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "properties": {"type": "dict", "default": {}},
    }
    module_kwargs = {"supports_check_mode": True}

    def existing_image(self, name: str) -> Any:
        images = [i for i in self.conn.image.images(name=name) if i.owner_id in (None, self.conn.current_project_id)]
        return images[0] if images else None

    def run(self) -> None:
        name = self.params["name"]
        image = self.existing_image(name)
        if image is not None:
            self.exit_json(changed=False, image=image.to_dict(computed=False))
        server = self.conn.compute.find_server(self.params["server"], ignore_missing=True)
        if server is None:
            self.fail_json(msg=f"Server {self.params['server']} was not found: nothing to capture.")
        if self.ansible.check_mode:
            self.exit_json(changed=True)
        properties = {str(k): str(v) for k, v in self.params["properties"].items()}
        image = self.conn.compute.create_server_image(server, name, metadata=properties, wait=self.params["wait"],
                                                      timeout=self.params["timeout"])
        self.exit_json(changed=True, image=image.to_dict(computed=False))


def main() -> None:
    module = OpenStackServerImageModule()
    module()


if __name__ == "__main__":
    main()
