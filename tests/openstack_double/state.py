"""In-memory state of the OpenStack double: one domain, one project, its resources and quotas."""

from __future__ import annotations

import base64
import ipaddress
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .faults import Faults


class ApiError(Exception):
    """An OpenStack API error: HTTP status plus the message a real service would give."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind or {400: "badRequest", 401: "unauthorized", 403: "forbidden",
                             404: "itemNotFound", 409: "conflictingRequest"}.get(status, "error")


def new_id() -> str:
    return uuid.uuid4().hex


def stamp(offset: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


# Glance's own image fields; everything else on an image is a property.
IMAGE_CORE_FIELDS = {
    "id", "name", "status", "visibility", "disk_format", "container_format", "min_disk", "min_ram", "size",
    "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "owner", "protected", "tags", "created_at",
    "updated_at", "os_hidden", "file", "schema", "self", "direct_url", "locations",
}
IMAGE_READ_ONLY = {"id", "status", "size", "virtual_size", "checksum", "created_at", "updated_at", "file", "schema",
                   "self", "os_hash_algo", "os_hash_value", "direct_url", "locations"}
IMAGE_META_LIMIT = 128       # Nova's maxImageMeta
IMAGE_PROPERTY_QUOTA = 128   # Glance's image_property_quota

DEFAULT_QUOTAS = {
    # Like a small EGI FedCloud allocation: 4 GPU machines of 6 cores and 12 GB.
    "instances": 4,
    "cores": 24,
    "ram": 4 * 12288,
    "floatingip": 4,
    "key_pairs": 100,
    "security_group": 10,
    "security_group_rule": 100,
}


@dataclass
class Cloud:
    """Everything the double knows. Tests seed and inspect it directly (hold ``lock``)."""

    project_id: str = "9f3c1a0e5b7d4c2e8a6f0b1d2c3e4f5a"
    project_name: str = "training.egi.eu"
    domain_id: str = "default"
    lock: threading.RLock = field(default_factory=threading.RLock)
    quotas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    oidc_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    keypairs: dict[str, dict[str, Any]] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    ports: dict[str, dict[str, Any]] = field(default_factory=dict)
    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    security_group_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    floating_ips: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    requests: list[tuple[str, str]] = field(default_factory=list)
    unknown_routes: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seed()

    # ------------------------------------------------------------------ seeding
    def seed(self) -> None:
        """The site as a course finds it: a user, images, flavours, networks, a default SG."""
        self.users["course-admin"] = {"id": new_id(), "name": "course-admin", "password": "s3cret"}
        self.app_credentials["3a5b7c9d1e2f4a6b8c0d2e4f6a8b0c1d"] = {
            "name": "course-cred", "secret": "app-s3cret", "user": "course-admin"}
        self.oidc_tokens["egi-access-token"] = {"user": "egi-user@egi.eu", "expires": time.time() + 3600}
        self.oidc_tokens["egi-expired-token"] = {"user": "egi-user@egi.eu", "expires": time.time() - 60}
        self.users["egi-user@egi.eu"] = {"id": new_id(), "name": "egi-user@egi.eu", "password": None}
        for name in ("scipion-1.1-course", "Ubuntu 22.04 (deprecated)", "Ubuntu 24.04"):
            self.add_image(name)
        self.add_flavor("m1.small", vcpus=1, ram=2048, disk=20)
        self.add_flavor("m1.large", vcpus=4, ram=8192, disk=40)
        self.add_flavor("g1.c06r12", vcpus=6, ram=12288, disk=40,
                        extra_specs={"pci_passthrough:alias": "K20m:1", "gpu": "1"})
        private = self.add_network("training-net", external=False)
        self.add_subnet(private, "10.10.0.0/24")
        public = self.add_network("public", external=True)
        self.add_subnet(public, "203.0.113.0/24")
        self.add_security_group("default", "Default security group", default_rules=True)

    def add_image(self, name: str, **extra: Any) -> dict[str, Any]:
        image = {
            "id": str(uuid.uuid4()), "name": name, "status": "active", "visibility": "public",
            "disk_format": "qcow2", "container_format": "bare", "min_disk": 0, "min_ram": 0,
            "size": 2147483648, "checksum": new_id(), "owner": self.project_id, "protected": False,
            "tags": [], "created_at": stamp(), "updated_at": stamp(), "os_hidden": False,
            "file": "", "schema": "/v2/schemas/image",
        }
        image.update(extra)
        image["file"] = f"/v2/images/{image['id']}/file"
        self.images[image["id"]] = image
        return image

    def snapshot_server(self, server: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Nova createImage: a private image of the server's disk, with the request's metadata as properties.

        Like Nova, it takes an ACTIVE or SHUTOFF server only and checks the metadata (strings of at most
        255 characters, at most maxImageMeta items); the snapshot inherits the base image's own
        properties, and is queued until the next read (the upload "finishes").
        """
        settle(server)
        if server["status"] not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
            raise ApiError(409, f"Cannot 'createImage' instance {server['id']} while it is in vm_state "
                                f"{server['status'].lower()}")
        name = body.get("name")
        if not name or not isinstance(name, str) or len(name) > 255:
            raise ApiError(400, "Invalid input for field/attribute name.")
        metadata = body.get("metadata") or {}
        for key, value in metadata.items():
            if not isinstance(value, str) or len(str(key)) > 255 or len(value) > 255:
                raise ApiError(400, f"Invalid input for field/attribute metadata. Value: {key}={value!r}")
        if len(metadata) > IMAGE_META_LIMIT:
            raise ApiError(403, "Quota exceeded for metadata_items: image metadata limit is "
                                f"{IMAGE_META_LIMIT}, {len(metadata)} given.", "forbidden")
        base = self.images.get(server["image"]["id"], {})
        inherited = {k: v for k, v in base.items() if k not in IMAGE_CORE_FIELDS and not k.startswith("_")}
        image = self.add_image(name, **inherited)
        image.update(status="queued", visibility="private", size=None, checksum=None,
                     min_disk=self.flavors[server["_flavor_id"]]["disk"], image_type="snapshot",
                     instance_uuid=server["id"], base_image_ref=server["image"]["id"],
                     _pending="active", _source_status=server["status"])
        image.update({str(k): v for k, v in metadata.items()})
        server["_actions"].append("createImage")
        return image

    def patch_image(self, image: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
        """Glance's JSON patch of an image: add, replace or remove a property (core fields read-only)."""
        for op in operations:
            kind, path = op.get("op"), str(op.get("path", ""))
            key = path.lstrip("/")
            if kind not in ("add", "replace", "remove") or not path.startswith("/") or "/" in key:
                raise ApiError(400, f"Invalid JSON pointer or operation: {op}")
            if key in IMAGE_READ_ONLY:
                raise ApiError(403, f"Attribute '{key}' is read-only.", "forbidden")
            if kind == "remove":
                if key not in image:
                    raise ApiError(409, f"Property {key} does not exist.")
                image.pop(key)
            elif kind == "replace" and key not in image:
                raise ApiError(409, f"Property {key} does not exist.")
            else:
                value = op.get("value")
                if key not in IMAGE_CORE_FIELDS and (not isinstance(value, str) or len(value) > 255):
                    raise ApiError(400, f"Property {key} must be a string of at most 255 characters.")
                image[key] = value
        extra = [k for k in image if k not in IMAGE_CORE_FIELDS and not k.startswith("_")]
        if len(extra) > IMAGE_PROPERTY_QUOTA:
            raise ApiError(413, f"Attempted: {len(extra)}, Maximum: {IMAGE_PROPERTY_QUOTA} image properties.")
        image["updated_at"] = stamp()
        return image

    def delete_image(self, image_id: str) -> None:
        image = self.images.get(image_id)
        if image is None:
            raise ApiError(404, f"No image found with ID {image_id}")
        if image.get("protected"):
            raise ApiError(403, f"Image {image_id} is protected and cannot be deleted.", "forbidden")
        # Like Glance: servers booted from the image keep running; nothing checks their use.
        self.images.pop(image_id)

    def add_flavor(self, name: str, vcpus: int, ram: int, disk: int,
                   extra_specs: dict[str, str] | None = None) -> dict[str, Any]:
        flavor_id = str(len(self.flavors) + 1)
        flavor = {"id": flavor_id, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                  "OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0, "rxtx_factor": 1.0,
                  "os-flavor-access:is_public": True, "OS-FLV-DISABLED:disabled": False,
                  "description": None, "extra_specs": dict(extra_specs or {})}
        self.flavors[flavor_id] = flavor
        return flavor

    def add_network(self, name: str, external: bool) -> dict[str, Any]:
        network = {
            "id": str(uuid.uuid4()), "name": name, "status": "ACTIVE", "admin_state_up": True,
            "router:external": external, "shared": external, "subnets": [], "mtu": 1450,
            "project_id": self.project_id, "tenant_id": self.project_id, "description": "",
            "availability_zones": ["nova"], "availability_zone_hints": [], "tags": [],
            "port_security_enabled": True, "is_default": external, "ipv4_address_scope": None,
            "ipv6_address_scope": None, "qos_policy_id": None, "revision_number": 1,
            "created_at": stamp(), "updated_at": stamp(), "provider:network_type": None,
            "provider:physical_network": None, "provider:segmentation_id": None,
        }
        self.networks[network["id"]] = network
        return network

    def add_subnet(self, network: dict[str, Any], cidr: str) -> dict[str, Any]:
        net = ipaddress.ip_network(cidr)
        hosts = list(net.hosts())
        subnet = {
            "id": str(uuid.uuid4()), "name": f"{network['name']}-subnet", "network_id": network["id"],
            "cidr": cidr, "ip_version": 4, "gateway_ip": str(hosts[0]), "enable_dhcp": True,
            "allocation_pools": [{"start": str(hosts[9]), "end": str(hosts[-1])}],
            "dns_nameservers": [], "host_routes": [], "project_id": self.project_id,
            "tenant_id": self.project_id, "description": "", "tags": [], "subnetpool_id": None,
            "ipv6_address_mode": None, "ipv6_ra_mode": None, "service_types": [],
            "revision_number": 0, "created_at": stamp(), "updated_at": stamp(),
            "_next_host": 9,
        }
        network["subnets"].append(subnet["id"])
        self.subnets[subnet["id"]] = subnet
        return subnet

    def add_security_group(self, name: str, description: str = "",
                           default_rules: bool = False) -> dict[str, Any]:
        group = {
            "id": str(uuid.uuid4()), "name": name, "description": description, "stateful": True,
            "project_id": self.project_id, "tenant_id": self.project_id, "tags": [],
            "revision_number": 1, "created_at": stamp(), "updated_at": stamp(),
            "shared": False,
        }
        self.security_groups[group["id"]] = group
        for ethertype in ("IPv4", "IPv6"):
            self.add_rule({"security_group_id": group["id"], "direction": "egress", "ethertype": ethertype})
            if default_rules:
                self.add_rule({"security_group_id": group["id"], "direction": "ingress",
                               "ethertype": ethertype, "remote_group_id": group["id"]})
        return group

    # ------------------------------------------------------------------ helpers
    def public_server(self, server: dict[str, Any]) -> dict[str, Any]:
        """A server as Nova shows it, addresses computed from ports and floating IPs."""
        settle(server)
        shown = {k: v for k, v in server.items() if not k.startswith("_")}
        shown["addresses"] = self.server_addresses(server["id"])
        shown["security_groups"] = [{"name": self.security_groups[sg]["name"]}
                                    for sg in server["_security_groups"] if sg in self.security_groups]
        shown["OS-EXT-STS:vm_state"] = {"ACTIVE": "active", "SHUTOFF": "stopped", "BUILD": "building",
                                        "REBOOT": "active", "ERROR": "error"}.get(server["status"], "active")
        shown["OS-EXT-STS:power_state"] = 1 if server["status"] in ("ACTIVE", "REBOOT") else 4
        shown["OS-EXT-STS:task_state"] = {"BUILD": "spawning", "REBOOT": "rebooting"}.get(server["status"])
        return shown

    def server_addresses(self, server_id: str) -> dict[str, list[dict[str, Any]]]:
        addresses: dict[str, list[dict[str, Any]]] = {}
        for port in self.ports.values():
            if port["device_id"] != server_id:
                continue
            entries = addresses.setdefault(self.networks[port["network_id"]]["name"], [])
            for fixed in port["fixed_ips"]:
                entries.append({"addr": fixed["ip_address"], "version": 4, "OS-EXT-IPS:type": "fixed",
                                "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
            for fip in self.floating_ips.values():
                if fip["port_id"] == port["id"]:
                    entries.append({"addr": fip["floating_ip_address"], "version": 4,
                                    "OS-EXT-IPS:type": "floating",
                                    "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
        return addresses

    def allocate_ip(self, network: dict[str, Any]) -> tuple[str, str]:
        if not network["subnets"]:
            raise ApiError(409, f"Network {network['id']} has no subnet", "IpAddressGenerationFailure")
        subnet = self.subnets[network["subnets"][0]]
        hosts = ipaddress.ip_network(subnet["cidr"]).hosts()
        subnet["_next_host"] += 1
        for index, host in enumerate(hosts):
            if index == subnet["_next_host"]:
                return subnet["id"], str(host)
        raise ApiError(409, f"No more IP addresses available on network {network['id']}.",
                       "IpAddressGenerationFailure")

    def create_port(self, network: dict[str, Any], device_id: str = "", owner: str = "",
                    security_groups: list[str] | None = None) -> dict[str, Any]:
        subnet_id, address = self.allocate_ip(network)
        port = {
            "id": str(uuid.uuid4()), "name": "", "network_id": network["id"], "device_id": device_id,
            "device_owner": owner, "status": "ACTIVE", "admin_state_up": True,
            "mac_address": "fa:16:3e:%02x:%02x:%02x" % tuple(uuid.uuid4().bytes[:3]),
            "fixed_ips": [{"subnet_id": subnet_id, "ip_address": address}],
            "security_groups": list(security_groups or []), "project_id": self.project_id,
            "tenant_id": self.project_id, "description": "", "tags": [], "allowed_address_pairs": [],
            "binding:vnic_type": "normal", "port_security_enabled": True, "extra_dhcp_opts": [],
            "revision_number": 1, "created_at": stamp(), "updated_at": stamp(), "dns_name": "",
            "dns_assignment": [], "qos_policy_id": None,
        }
        self.ports[port["id"]] = port
        return port

    def add_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        group_id = body.get("security_group_id")
        if group_id not in self.security_groups:
            raise ApiError(404, f"Security group {group_id} does not exist", "SecurityGroupNotFound")
        rule = {
            "id": str(uuid.uuid4()), "security_group_id": group_id,
            "direction": body.get("direction"), "ethertype": body.get("ethertype") or "IPv4",
            "protocol": body.get("protocol"), "port_range_min": body.get("port_range_min"),
            "port_range_max": body.get("port_range_max"),
            "remote_ip_prefix": body.get("remote_ip_prefix"), "remote_group_id": body.get("remote_group_id"),
            "remote_address_group_id": None, "description": body.get("description") or "",
            "project_id": self.project_id, "tenant_id": self.project_id, "tags": [],
            "revision_number": 0, "created_at": stamp(), "updated_at": stamp(),
            "normalized_cidr": body.get("remote_ip_prefix"), "belongs_to_default_sg": False,
        }
        if rule["direction"] not in ("ingress", "egress"):
            raise ApiError(400, "Invalid input for direction.", "HTTPBadRequest")
        same = ("security_group_id", "direction", "ethertype", "protocol", "port_range_min",
                "port_range_max", "remote_ip_prefix", "remote_group_id")
        for existing in self.security_group_rules.values():
            if all(existing[k] == rule[k] for k in same):
                raise ApiError(409, f"Security group rule already exists. Rule id is {existing['id']}.",
                               "SecurityGroupRuleExists")
        if len(self.security_group_rules) >= self.quotas["security_group_rule"]:
            raise ApiError(409, "Quota exceeded for resources: ['security_group_rule'].", "OverQuota")
        self.security_group_rules[rule["id"]] = rule
        return rule

    def usage(self) -> dict[str, int]:
        flavors = [self.flavors[s["_flavor_id"]] for s in self.servers.values()]
        return {"instances": len(self.servers), "cores": sum(f["vcpus"] for f in flavors),
                "ram": sum(f["ram"] for f in flavors), "floatingip": len(self.floating_ips),
                "key_pairs": len(self.keypairs), "security_group": len(self.security_groups),
                "security_group_rule": len(self.security_group_rules)}

    def check_server_quota(self, flavor: dict[str, Any]) -> None:
        """Nova's quota check of one more server, refused with Nova's own message (HTTP 403)."""
        used = self.usage()
        asks = {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["ram"]}
        over = sorted(k for k, n in asks.items() if used[k] + n > self.quotas[k])
        if over:
            def joined(values: dict[str, int]) -> str:
                return ", ".join(str(values[k]) for k in over)
            names = ", ".join(over)
            raise ApiError(403, f"Quota exceeded for {names}: Requested {joined(asks)}, but already used "
                                f"{joined(used)} of {joined(self.quotas)} {names}", "forbidden")

    def create_server(self, body: dict[str, Any], user_id: str) -> dict[str, Any]:
        name = body.get("name")
        if not name:
            raise ApiError(400, "Invalid input for field/attribute name.")
        image_id = body.get("imageRef")
        if image_id not in self.images:
            raise ApiError(400, f"Can not find requested image {image_id}")
        flavor_id = str(body.get("flavorRef", "")).rsplit("/", 1)[-1]
        if flavor_id not in self.flavors:
            raise ApiError(400, f"Flavor {flavor_id} could not be found.")
        key_name = body.get("key_name")
        if key_name and key_name not in self.keypairs:
            raise ApiError(400, f"Invalid key_name provided: {key_name}")
        groups = []
        for entry in body.get("security_groups") or [{"name": "default"}]:
            found = [g for g in self.security_groups.values() if entry["name"] in (g["name"], g["id"])]
            if not found:
                raise ApiError(400, f"Security group {entry['name']} not found for project {self.project_id}.")
            groups.append(found[0]["id"])
        networks = self.requested_networks(body.get("networks"))
        self.check_server_quota(self.flavors[flavor_id])
        fault = self.faults.server_fault(self.flavors[flavor_id]["name"])
        user_data = body.get("user_data")
        server_id = str(uuid.uuid4())
        server = {
            "id": server_id, "name": name, "status": "BUILD", "tenant_id": self.project_id,
            "user_id": user_id, "metadata": {str(k): str(v) for k, v in (body.get("metadata") or {}).items()},
            "created": stamp(), "updated": stamp(), "hostId": new_id(), "host_status": "UP",
            "image": {"id": image_id, "links": []},
            "flavor": self.embedded_flavor(self.flavors[flavor_id]),
            "key_name": key_name, "accessIPv4": "", "accessIPv6": "", "config_drive": "",
            "OS-EXT-AZ:availability_zone": body.get("availability_zone") or "nova",
            "OS-DCF:diskConfig": "MANUAL", "progress": 0, "locked": False, "locked_reason": None,
            "description": body.get("description"), "tags": list(body.get("tags") or []),
            "trusted_image_certificates": None, "os-extended-volumes:volumes_attached": [],
            "OS-SRV-USG:launched_at": None, "OS-SRV-USG:terminated_at": None,
            "fault": {**fault, "created": stamp()} if fault else None, "links": [],
            "_flavor_id": flavor_id, "_security_groups": groups, "_pending": "ERROR" if fault else "ACTIVE",
            "_user_data": base64.b64decode(user_data).decode() if user_data else None,
            "_actions": ["create"], "_boots": 0,
        }
        self.servers[server_id] = server
        # A server that found no host never had its network set up: no ports.
        for network in [] if fault else networks:
            self.create_port(network, device_id=server_id, owner="compute:nova", security_groups=groups)
        if self.faults.quota_full_now():
            self.quotas["instances"] = self.usage()["instances"]
        return server

    def requested_networks(self, requested: Any) -> list[dict[str, Any]]:
        if requested in (None, "auto"):
            candidates = [n for n in self.networks.values() if not n["router:external"]]
            if len(candidates) != 1:
                raise ApiError(409, "Multiple possible networks found, use a Network ID to be more specific.")
            return candidates
        if requested == "none":
            return []
        networks = []
        for entry in requested:
            if entry.get("port"):
                raise ApiError(400, "Booting on a pre-created port is not modelled by this double.")
            network = self.networks.get(entry.get("uuid"))
            if network is None:
                raise ApiError(400, f"Network {entry.get('uuid')} could not be found.")
            networks.append(network)
        return networks

    @staticmethod
    def embedded_flavor(flavor: dict[str, Any]) -> dict[str, Any]:
        return {"original_name": flavor["name"], "vcpus": flavor["vcpus"], "ram": flavor["ram"],
                "disk": flavor["disk"], "ephemeral": 0, "swap": 0, "extra_specs": dict(flavor["extra_specs"])}

    def server_action(self, server: dict[str, Any], action: str, body: Any) -> None:
        settle(server)
        status = server["status"]
        refuse = {
            "os-start": status != "SHUTOFF",
            "os-stop": status not in ("ACTIVE", "ERROR"),
            "reboot": status not in ("ACTIVE", "SHUTOFF") or (
                status == "SHUTOFF" and (body or {}).get("type", "SOFT").upper() == "SOFT"),
        }
        if action not in refuse:
            raise ApiError(400, f"Server action {action} is not modelled by this double.")
        if refuse[action]:
            raise ApiError(409, f"Cannot '{action.replace('os-', '')}' instance {server['id']} while it "
                                f"is in vm_state {self.public_server(server)['OS-EXT-STS:vm_state']}")
        server["_actions"].append(action)
        if action == "os-stop":
            server["_pending"] = "SHUTOFF"
        elif action == "os-start":
            server["_pending"] = "ACTIVE"
        else:
            server["status"] = "REBOOT"
            server["_pending"] = "ACTIVE"
        server["updated"] = stamp()

    def delete_server(self, server_id: str) -> None:
        self.servers.pop(server_id)
        for port in [p for p in self.ports.values() if p["device_id"] == server_id]:
            self.ports.pop(port["id"])
            for fip in self.floating_ips.values():
                if fip["port_id"] == port["id"]:
                    fip.update(port_id=None, fixed_ip_address=None, status="DOWN", router_id=None)

    def create_floating_ip(self, body: dict[str, Any]) -> dict[str, Any]:
        network = self.networks.get(body.get("floating_network_id"))
        if network is None or not network["router:external"]:
            raise ApiError(404, f"External network {body.get('floating_network_id')} could not be found.",
                           "ExternalNetworkNotFound")
        if len(self.floating_ips) >= self.quotas["floatingip"]:
            raise ApiError(409, f"Quota exceeded for resources: ['floatingip']. Limit {self.quotas['floatingip']}.",
                           "OverQuota")
        _, address = self.allocate_ip(network)
        fip = {
            "id": str(uuid.uuid4()), "floating_ip_address": address, "floating_network_id": network["id"],
            "port_id": None, "fixed_ip_address": None, "router_id": None, "status": "DOWN",
            "project_id": self.project_id, "tenant_id": self.project_id,
            "description": body.get("description") or "", "tags": [], "dns_domain": "", "dns_name": "",
            "port_details": None, "port_forwardings": [], "qos_policy_id": None,
            "revision_number": 0, "created_at": stamp(), "updated_at": stamp(),
        }
        self.floating_ips[fip["id"]] = fip
        self.associate_floating_ip(fip, body.get("port_id"), body.get("fixed_ip_address"))
        return fip

    def associate_floating_ip(self, fip: dict[str, Any], port_id: str | None, fixed: str | None) -> None:
        if port_id is None:
            fip.update(port_id=None, fixed_ip_address=None, status="DOWN", router_id=None, port_details=None)
            return
        port = self.ports.get(port_id)
        if port is None:
            raise ApiError(404, f"Port {port_id} could not be found.", "PortNotFound")
        for other in self.floating_ips.values():
            if other["port_id"] == port_id and other["id"] != fip["id"]:
                raise ApiError(409, f"Cannot associate floating IP {fip['floating_ip_address']} with port "
                                    f"{port_id}: it already has floating IP {other['floating_ip_address']}.",
                               "FloatingIPPortAlreadyAssociated")
        fip.update(port_id=port_id, fixed_ip_address=fixed or port["fixed_ips"][0]["ip_address"],
                   status="ACTIVE", router_id=new_id(),
                   port_details={"name": port["name"], "network_id": port["network_id"],
                                 "mac_address": port["mac_address"], "admin_state_up": True,
                                 "status": "ACTIVE", "device_id": port["device_id"],
                                 "device_owner": port["device_owner"]})
        fip["updated_at"] = stamp()

    def add_volume(self, name: str, size: int = 10, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        volume = {"id": str(uuid.uuid4()), "name": name, "size": size, "status": "available",
                  "metadata": dict(metadata or {}), "attachments": [], "bootable": "false",
                  "availability_zone": "nova", "created_at": stamp(), "updated_at": stamp(),
                  "description": None, "volume_type": "default", "multiattach": False,
                  "encrypted": False, "os-vol-tenant-attr:tenant_id": self.project_id,
                  "user_id": None, "snapshot_id": None, "source_volid": None, "links": []}
        self.volumes[volume["id"]] = volume
        return volume


def settle_image(image: dict[str, Any]) -> None:
    """A snapshot's upload finishes by the next read: active, with a size and checksum."""
    if image.get("_pending"):
        image.update(status=image.pop("_pending"), size=2147483648, checksum=new_id(), updated_at=stamp())


def settle(server: dict[str, Any]) -> None:
    """A transition requested earlier completes by the next read (the double has no clock)."""
    pending = server.get("_pending")
    if pending:
        server["status"] = pending
        server["_pending"] = None
        if pending == "ACTIVE":
            server["_boots"] += 1
            server["OS-SRV-USG:launched_at"] = server["OS-SRV-USG:launched_at"] or stamp()
