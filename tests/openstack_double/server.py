"""HTTP front of the OpenStack double: routes, Keystone tokens, JSON in and out."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from .faults import NO_VALID_HOST, UNAVAILABLE_PAGE, Burst, Conflict, ServerFault
from .state import ApiError, Cloud, new_id, settle_image, stamp

Handler = Callable[["Request"], tuple[int, Any]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []
TOKEN_LIFETIME = 3600
NOVA_MAX_MICROVERSION = "2.79"


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for METHOD and a path pattern ({name} captures one segment)."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")

    def register(func: Handler) -> Handler:
        ROUTES.append((method, regex, func))
        return func

    return register


class Request:
    """What a handler needs: the cloud, path parameters, query, JSON body, headers, token."""

    def __init__(self, cloud: Cloud, base: str, params: dict[str, str], query: dict[str, list[str]],
                 body: Any, headers: Any) -> None:
        self.cloud = cloud
        self.base = base
        self.params = params
        self.query = query
        self.body = body
        self.headers = headers
        self.token: dict[str, Any] = {}
        self.response_headers: dict[str, str] = {}

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


# ---------------------------------------------------------------------- Keystone
def catalog(base: str, project_id: str) -> list[dict[str, Any]]:
    services = [("identity", "keystone", f"{base}/identity/v3"),
                ("compute", "nova", f"{base}/compute/v2.1"),
                ("image", "glance", f"{base}/image"),
                ("network", "neutron", f"{base}/network"),
                ("block-storage", "cinder", f"{base}/volume/v3/{project_id}"),
                ("volumev3", "cinderv3", f"{base}/volume/v3/{project_id}")]
    return [{"id": new_id(), "type": kind, "name": name,
             "endpoints": [{"id": new_id(), "interface": iface, "region": "RegionOne",
                            "region_id": "RegionOne", "url": url} for iface in ("public", "internal")]}
            for kind, name, url in services]


def issue_token(req: Request, user_name: str, methods: list[str], scoped: bool) -> tuple[int, Any]:
    cloud = req.cloud
    token_id = "gAAAA" + new_id()
    expires = time.time() + TOKEN_LIFETIME
    cloud.tokens[token_id] = {"user": user_name, "scoped": scoped, "expires": expires}
    user = cloud.users[user_name]
    token: dict[str, Any] = {
        "methods": methods, "expires_at": stamp(TOKEN_LIFETIME)[:-1] + ".000000Z",
        "issued_at": stamp()[:-1] + ".000000Z", "audit_ids": [new_id()[:22]],
        "user": {"id": user["id"], "name": user_name, "domain": {"id": cloud.domain_id, "name": "Default"},
                 "password_expires_at": None},
    }
    if scoped:
        token["project"] = {"id": cloud.project_id, "name": cloud.project_name,
                            "domain": {"id": cloud.domain_id, "name": "Default"}}
        token["roles"] = [{"id": new_id(), "name": "member"}, {"id": new_id(), "name": "reader"}]
        token["catalog"] = catalog(req.base, cloud.project_id)
        token["is_domain"] = False
    req.response_headers["X-Subject-Token"] = token_id
    return 201, {"token": token}


def check_scope(req: Request, scope: dict[str, Any] | None) -> bool:
    if not scope:
        return False
    project = scope.get("project")
    if project is None:
        raise ApiError(401, "The request you have made requires authentication (only project scope is modelled).")
    if project.get("id") not in (None, req.cloud.project_id) or \
            project.get("name") not in (None, req.cloud.project_name):
        raise ApiError(401, f"You are not authorized for project {project.get('id') or project.get('name')}.")
    return True


@route("GET", "/identity")
def identity_versions(req: Request) -> tuple[int, Any]:
    return 300, {"versions": {"values": [identity_version(req)]}}


@route("GET", "/identity/v3")
def identity_v3(req: Request) -> tuple[int, Any]:
    return 200, {"version": identity_version(req)}


def identity_version(req: Request) -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{req.base}/identity/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}


@route("POST", "/identity/v3/auth/tokens")
def create_token(req: Request) -> tuple[int, Any]:
    auth = (req.body or {}).get("auth", {})
    identity = auth.get("identity", {})
    methods = identity.get("methods", [])
    cloud = req.cloud
    user_name = None
    if "password" in methods:
        user = identity["password"]["user"]
        known = cloud.users.get(user.get("name", ""))
        if not known or known["password"] is None or known["password"] != user.get("password"):
            raise ApiError(401, "The request you have made requires authentication.")
        user_name = user["name"]
    elif "application_credential" in methods:
        cred = identity["application_credential"]
        known = cloud.app_credentials.get(cred.get("id", ""))
        if known is None:
            known = next((c for c in cloud.app_credentials.values() if c["name"] == cred.get("name")), None)
        if known is None or known["secret"] != cred.get("secret"):
            raise ApiError(401, "The request you have made requires authentication.")
        user_name = known["user"]
        return issue_token(req, user_name, methods, scoped=True)
    elif "token" in methods:
        held = cloud.tokens.get(identity["token"].get("id", ""))
        if held is None or held["expires"] < time.time():
            raise ApiError(401, "The request you have made requires authentication.")
        user_name = held["user"]
    else:
        raise ApiError(401, f"Authentication methods {methods} are not modelled by this double.")
    return issue_token(req, user_name, methods, scoped=check_scope(req, auth.get("scope")))


@route("POST", "/identity/v3/OS-FEDERATION/identity_providers/{idp}/protocols/{protocol}/auth")
def federated_auth(req: Request) -> tuple[int, Any]:
    """EGI Check-in: an OIDC access token in 'Authorization: Bearer' buys an unscoped token."""
    if req.params["idp"] != "egi.eu" or req.params["protocol"] != "openid":
        raise ApiError(404, f"Could not find Identity Provider {req.params['idp']} / protocol "
                            f"{req.params['protocol']}.")
    header = req.headers.get("Authorization", "")
    access_token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
    known = req.cloud.oidc_tokens.get(access_token)
    if known is None or known["expires"] < time.time():
        raise ApiError(401, "The request you have made requires authentication.")
    return issue_token(req, known["user"], ["openid"], scoped=False)


@route("GET", "/identity/v3/auth/projects")
@route("GET", "/identity/v3/OS-FEDERATION/projects")
def auth_projects(req: Request) -> tuple[int, Any]:
    cloud = req.cloud
    return 200, {"projects": [{"id": cloud.project_id, "name": cloud.project_name, "enabled": True,
                               "domain_id": cloud.domain_id, "is_domain": False, "parent_id": cloud.domain_id,
                               "description": "", "tags": [], "links": {}}]}


# ---------------------------------------------------------------------- version documents
@route("GET", "/compute")
@route("GET", "/compute/v2.1")
def compute_version(req: Request) -> tuple[int, Any]:
    version = {"id": "v2.1", "status": "CURRENT", "version": NOVA_MAX_MICROVERSION, "min_version": "2.1",
               "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": f"{req.base}/compute/v2.1/"}]}
    return 200, {"version": version} if req.params.get("_exact") else {"versions": [version]}


@route("GET", "/image")
def image_versions(req: Request) -> tuple[int, Any]:
    return 300, {"versions": [{"id": "v2.16", "status": "CURRENT",
                               "links": [{"rel": "self", "href": f"{req.base}/image/v2/"}]}]}


@route("GET", "/network")
def network_versions(req: Request) -> tuple[int, Any]:
    return 200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                               "links": [{"rel": "self", "href": f"{req.base}/network/v2.0/"}]}]}


@route("GET", "/network/v2.0")
def network_resources(req: Request) -> tuple[int, Any]:
    return 200, {"resources": [{"name": n, "collection": n + "s", "links": []}
                               for n in ("network", "subnet", "port")]}


@route("GET", "/volume/v3/{project}")
def volume_version(req: Request) -> tuple[int, Any]:
    return 200, {"versions": [{"id": "v3.0", "status": "CURRENT", "version": "3.60", "min_version": "3.0",
                               "links": [{"rel": "self", "href": f"{req.base}/volume/v3/"}]}]}


# ---------------------------------------------------------------------- Nova
def find_server(req: Request) -> dict[str, Any]:
    server = req.cloud.servers.get(req.params["server_id"])
    if server is None:
        raise ApiError(404, f"Instance {req.params['server_id']} could not be found.")
    return server


def paginate(req: Request, items: list[dict[str, Any]], key: str = "id") -> list[dict[str, Any]]:
    marker = req.arg("marker")
    if marker:
        ids = [i[key] for i in items]
        items = items[ids.index(marker) + 1:] if marker in ids else []
    limit = req.arg("limit")
    return items[: int(limit)] if limit else items


@route("GET", "/compute/v2.1/servers")
@route("GET", "/compute/v2.1/servers/detail")
def list_servers(req: Request) -> tuple[int, Any]:
    cloud = req.cloud
    servers = [cloud.public_server(s) for s in cloud.servers.values()]
    name = req.arg("name")
    if name:
        servers = [s for s in servers if re.search(name, s["name"])]
    status = req.arg("status")
    if status:
        servers = [s for s in servers if s["status"] == status.upper()]
    servers = paginate(req, sorted(servers, key=lambda s: s["created"] + s["id"]))
    return 200, {"servers": servers}


@route("POST", "/compute/v2.1/servers")
def create_server(req: Request) -> tuple[int, Any]:
    server = req.cloud.create_server((req.body or {}).get("server", {}), req.token["user_id"])
    return 202, {"server": {"id": server["id"], "links": [], "OS-DCF:diskConfig": "MANUAL",
                            "adminPass": new_id()[:12],
                            "security_groups": [{"name": req.cloud.security_groups[g]["name"]}
                                                for g in server["_security_groups"]]}}


@route("GET", "/compute/v2.1/servers/{server_id}")
def show_server(req: Request) -> tuple[int, Any]:
    return 200, {"server": req.cloud.public_server(find_server(req))}


@route("PUT", "/compute/v2.1/servers/{server_id}")
def update_server(req: Request) -> tuple[int, Any]:
    server = find_server(req)
    for key in ("name", "description", "accessIPv4", "accessIPv6"):
        if key in req.body.get("server", {}):
            server[key] = req.body["server"][key]
    return 200, {"server": req.cloud.public_server(server)}


@route("DELETE", "/compute/v2.1/servers/{server_id}")
def delete_server(req: Request) -> tuple[int, Any]:
    req.cloud.delete_server(find_server(req)["id"])
    return 204, None


@route("POST", "/compute/v2.1/servers/{server_id}/action")
def server_action(req: Request) -> tuple[int, Any]:
    server = find_server(req)
    (action, body), = req.body.items()
    cloud = req.cloud
    task_state = cloud.faults.conflict(action)
    if task_state:
        raise ApiError(409, f"Cannot '{action.replace('os-', '')}' instance {server['id']} while it is in "
                            f"task_state {task_state}")
    if action in ("addSecurityGroup", "removeSecurityGroup"):
        group = next((g for g in cloud.security_groups.values() if body["name"] in (g["name"], g["id"])), None)
        if group is None:
            raise ApiError(404, f"Security group {body['name']} not found.")
        groups = server["_security_groups"]
        if action == "addSecurityGroup" and group["id"] not in groups:
            groups.append(group["id"])
        elif action == "removeSecurityGroup" and group["id"] in groups:
            groups.remove(group["id"])
        return 202, None
    if action == "createImage":
        image = cloud.snapshot_server(server, body or {})
        # Microversion 2.45 and later answer with the id in the body (earlier ones in a Location header).
        req.response_headers["Location"] = f"{req.base}/image/v2/images/{image['id']}"
        return 202, {"image_id": image["id"]}
    cloud.server_action(server, action, body)
    return 202, None


@route("GET", "/compute/v2.1/servers/{server_id}/os-security-groups")
def server_security_groups(req: Request) -> tuple[int, Any]:
    server = find_server(req)
    groups = [req.cloud.security_groups[g] for g in server["_security_groups"] if g in req.cloud.security_groups]
    return 200, {"security_groups": [{"id": g["id"], "name": g["name"], "description": g["description"],
                                      "tenant_id": g["tenant_id"], "rules": []} for g in groups]}


@route("GET", "/compute/v2.1/servers/{server_id}/metadata")
def server_metadata(req: Request) -> tuple[int, Any]:
    return 200, {"metadata": find_server(req)["metadata"]}


@route("POST", "/compute/v2.1/servers/{server_id}/metadata")
def set_server_metadata(req: Request) -> tuple[int, Any]:
    server = find_server(req)
    server["metadata"].update({str(k): str(v) for k, v in req.body["metadata"].items()})
    return 200, {"metadata": server["metadata"]}


@route("DELETE", "/compute/v2.1/servers/{server_id}/metadata/{key}")
def delete_server_metadata(req: Request) -> tuple[int, Any]:
    server = find_server(req)
    if server["metadata"].pop(urllib.parse.unquote(req.params["key"]), None) is None:
        raise ApiError(404, "Metadata item was not found")
    return 204, None


@route("PUT", "/compute/v2.1/servers/{server_id}/tags")
def set_server_tags(req: Request) -> tuple[int, Any]:
    server = find_server(req)
    server["tags"] = list(req.body.get("tags", []))
    return 200, {"tags": server["tags"]}


@route("GET", "/compute/v2.1/servers/{server_id}/os-interface")
def server_interfaces(req: Request) -> tuple[int, Any]:
    server = find_server(req)
    ports = [p for p in req.cloud.ports.values() if p["device_id"] == server["id"]]
    return 200, {"interfaceAttachments": [{"port_id": p["id"], "net_id": p["network_id"], "port_state": "ACTIVE",
                                           "mac_addr": p["mac_address"], "fixed_ips": p["fixed_ips"]}
                                          for p in ports]}


def public_flavor(flavor: dict[str, Any]) -> dict[str, Any]:
    return {**flavor, "links": []}


@route("GET", "/compute/v2.1/flavors")
@route("GET", "/compute/v2.1/flavors/detail")
def list_flavors(req: Request) -> tuple[int, Any]:
    flavors = [public_flavor(f) for f in req.cloud.flavors.values()]
    return 200, {"flavors": paginate(req, flavors)}


@route("GET", "/compute/v2.1/flavors/{flavor_id}")
def show_flavor(req: Request) -> tuple[int, Any]:
    flavor = req.cloud.flavors.get(req.params["flavor_id"])
    if flavor is None:
        raise ApiError(404, f"Flavor {req.params['flavor_id']} could not be found.")
    return 200, {"flavor": public_flavor(flavor)}


@route("GET", "/compute/v2.1/flavors/{flavor_id}/os-extra_specs")
def flavor_extra_specs(req: Request) -> tuple[int, Any]:
    flavor = req.cloud.flavors.get(req.params["flavor_id"])
    if flavor is None:
        raise ApiError(404, f"Flavor {req.params['flavor_id']} could not be found.")
    return 200, {"extra_specs": flavor["extra_specs"]}


def public_keypair(keypair: dict[str, Any], details: bool = True) -> dict[str, Any]:
    shown = {k: v for k, v in keypair.items() if k != "private_key"}
    if not details:
        shown = {k: shown[k] for k in ("name", "public_key", "fingerprint", "type")}
    return shown


@route("GET", "/compute/v2.1/os-keypairs")
def list_keypairs(req: Request) -> tuple[int, Any]:
    return 200, {"keypairs": [{"keypair": public_keypair(k, details=False)}
                              for k in req.cloud.keypairs.values()]}


@route("GET", "/compute/v2.1/os-keypairs/{name}")
def show_keypair(req: Request) -> tuple[int, Any]:
    keypair = req.cloud.keypairs.get(urllib.parse.unquote(req.params["name"]))
    if keypair is None:
        raise ApiError(404, f"Keypair {req.params['name']} not found for user {req.token['user_id']}")
    return 200, {"keypair": public_keypair(keypair)}


@route("POST", "/compute/v2.1/os-keypairs")
def create_keypair(req: Request) -> tuple[int, Any]:
    body = req.body["keypair"]
    cloud = req.cloud
    name = body["name"]
    if name in cloud.keypairs:
        raise ApiError(409, f"Key pair '{name}' already exists.")
    if len(cloud.keypairs) >= cloud.quotas["key_pairs"]:
        raise ApiError(403, "Quota exceeded, too many key pairs.")
    keypair = {"name": name, "type": body.get("type", "ssh"), "fingerprint": ":".join(
        new_id()[i:i + 2] for i in range(0, 32, 2)), "user_id": req.token["user_id"],
        "created_at": stamp(), "deleted": False, "deleted_at": None, "updated_at": None, "id": len(cloud.keypairs) + 1}
    if body.get("public_key"):
        keypair["public_key"] = body["public_key"]
        private = None
    else:
        keypair["public_key"], private = generated_key(name)
    cloud.keypairs[name] = keypair
    shown = public_keypair(keypair)
    if private:
        shown["private_key"] = private
    return 200, {"keypair": shown}


def generated_key(name: str) -> tuple[str, str]:
    """A real Ed25519 key pair when the cryptography package is there (it is, with openstacksdk)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return f"{public} {name}", private


@route("DELETE", "/compute/v2.1/os-keypairs/{name}")
def delete_keypair(req: Request) -> tuple[int, Any]:
    if req.cloud.keypairs.pop(urllib.parse.unquote(req.params["name"]), None) is None:
        raise ApiError(404, f"Keypair {req.params['name']} not found")
    return 202, None


@route("GET", "/compute/v2.1/limits")
def compute_limits(req: Request) -> tuple[int, Any]:
    cloud = req.cloud
    used = cloud.usage()
    quotas = cloud.quotas
    absolute = {
        "maxTotalInstances": quotas["instances"], "totalInstancesUsed": used["instances"],
        "maxTotalCores": quotas["cores"], "totalCoresUsed": used["cores"],
        "maxTotalRAMSize": quotas["ram"], "totalRAMUsed": used["ram"],
        "maxTotalKeypairs": quotas["key_pairs"], "maxServerMeta": 128, "maxPersonality": 5,
        "maxPersonalitySize": 10240, "maxServerGroups": 10, "maxServerGroupMembers": 10,
        "maxImageMeta": 128, "totalServerGroupsUsed": 0,
        "maxTotalFloatingIps": quotas["floatingip"], "totalFloatingIpsUsed": used["floatingip"],
        "maxSecurityGroups": quotas["security_group"], "totalSecurityGroupsUsed": used["security_group"],
        "maxSecurityGroupRules": quotas["security_group_rule"],
    }
    return 200, {"limits": {"absolute": absolute, "rate": []}}


@route("GET", "/compute/v2.1/os-availability-zone")
@route("GET", "/compute/v2.1/os-availability-zone/detail")
def availability_zones(req: Request) -> tuple[int, Any]:
    return 200, {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]}


@route("GET", "/compute/v2.1/os-quota-sets/{project}")
@route("GET", "/compute/v2.1/os-quota-sets/{project}/detail")
def compute_quota_set(req: Request) -> tuple[int, Any]:
    cloud = req.cloud
    used = cloud.usage()
    keys = {"instances": "instances", "cores": "cores", "ram": "ram", "key_pairs": "key_pairs"}
    return 200, {"quota_set": {"id": req.params["project"], **{
        name: {"limit": cloud.quotas[key], "in_use": used[key], "reserved": 0} for name, key in keys.items()}}}


# ---------------------------------------------------------------------- Glance
GLANCE_LIST_PARAMS = {"limit", "marker", "sort", "sort_key", "sort_dir", "member_status"}


def public_image(image: dict[str, Any]) -> dict[str, Any]:
    settle_image(image)
    return {k: v for k, v in image.items() if not k.startswith("_")}


def find_image(req: Request) -> dict[str, Any]:
    image = req.cloud.images.get(req.params["image_id"])
    if image is None:
        raise ApiError(404, f"No image found with ID {req.params['image_id']}")
    return image


@route("GET", "/image/v2/images")
def list_images(req: Request) -> tuple[int, Any]:
    """Glance filters on core fields and on any image property given in the query string."""
    images = [public_image(i) for i in req.cloud.images.values()]
    hidden = (req.arg("os_hidden") or "false").lower() == "true"  # hidden images only when asked for
    images = [i for i in images if bool(i.get("os_hidden")) == hidden]
    for key, values in req.query.items():
        if key in GLANCE_LIST_PARAMS or key == "os_hidden" or (key == "visibility" and values[-1] == "all"):
            continue
        images = [i for i in images if str(i.get(key)) == values[-1]]
    return 200, {"images": paginate(req, images), "schema": "/v2/schemas/images", "first": "/v2/images"}


@route("GET", "/image/v2/images/{image_id}")
def show_image(req: Request) -> tuple[int, Any]:
    return 200, public_image(find_image(req))


@route("PATCH", "/image/v2/images/{image_id}")
def update_image(req: Request) -> tuple[int, Any]:
    content_type = req.headers.get("Content-Type", "")
    if "openstack-images-v2.1-json-patch" not in content_type:
        raise ApiError(415, f"Unsupported Content-Type {content_type!r}: send application/openstack-images-v2.1-json-patch")
    if not isinstance(req.body, list):
        raise ApiError(400, "The request body must be a JSON patch (a list of operations).")
    return 200, public_image(req.cloud.patch_image(find_image(req), req.body))


@route("DELETE", "/image/v2/images/{image_id}")
def delete_image(req: Request) -> tuple[int, Any]:
    req.cloud.delete_image(req.params["image_id"])
    return 204, None


# ---------------------------------------------------------------------- Neutron
NEUTRON_IGNORED_FILTERS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"}


def neutron_list(req: Request, items: dict[str, dict[str, Any]], key: str) -> tuple[int, Any]:
    """Neutron filters a collection on any attribute given in the query string."""
    selected = []
    for item in items.values():
        visible = {k: v for k, v in item.items() if not k.startswith("_")}
        if all(matches(visible.get(field), values) for field, values in req.query.items()
               if field not in NEUTRON_IGNORED_FILTERS):
            selected.append(visible)
    return 200, {key: paginate(req, selected)}


def matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return str(value).lower() in [w.lower() for w in wanted]
    if isinstance(value, list):
        return all(w in value for w in wanted)
    return ("" if value is None else str(value)) in wanted


def neutron_get(items: dict[str, dict[str, Any]], item_id: str, kind: str) -> dict[str, Any]:
    item = items.get(item_id)
    if item is None:
        raise ApiError(404, f"{kind} {item_id} could not be found.", f"{kind.replace(' ', '')}NotFound")
    return item


def neutron_show(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_")}


@route("GET", "/network/v2.0/extensions")
def network_extensions(req: Request) -> tuple[int, Any]:
    aliases = ["router", "external-net", "security-group", "quotas", "quota_details", "standard-attr-tag",
               "port-security", "extraroute", "dns-integration", "standard-attr-description", "fip-port-details"]
    return 200, {"extensions": [{"alias": a, "name": a, "description": "", "updated": "2020-01-01T00:00:00Z",
                                 "links": []} for a in aliases]}


@route("GET", "/network/v2.0/networks")
def list_networks(req: Request) -> tuple[int, Any]:
    return neutron_list(req, req.cloud.networks, "networks")


@route("GET", "/network/v2.0/networks/{item_id}")
def show_network(req: Request) -> tuple[int, Any]:
    return 200, {"network": neutron_show(neutron_get(req.cloud.networks, req.params["item_id"], "Network"))}


@route("GET", "/network/v2.0/subnets")
def list_subnets(req: Request) -> tuple[int, Any]:
    return neutron_list(req, req.cloud.subnets, "subnets")


@route("GET", "/network/v2.0/subnets/{item_id}")
def show_subnet(req: Request) -> tuple[int, Any]:
    return 200, {"subnet": neutron_show(neutron_get(req.cloud.subnets, req.params["item_id"], "Subnet"))}


@route("GET", "/network/v2.0/ports")
def list_ports(req: Request) -> tuple[int, Any]:
    return neutron_list(req, req.cloud.ports, "ports")


@route("GET", "/network/v2.0/ports/{item_id}")
def show_port(req: Request) -> tuple[int, Any]:
    return 200, {"port": neutron_show(neutron_get(req.cloud.ports, req.params["item_id"], "Port"))}


@route("GET", "/network/v2.0/routers")
def list_routers(req: Request) -> tuple[int, Any]:
    return 200, {"routers": []}


@route("GET", "/network/v2.0/security-groups")
def list_security_groups(req: Request) -> tuple[int, Any]:
    status, body = neutron_list(req, req.cloud.security_groups, "security_groups")
    for group in body["security_groups"]:
        group["security_group_rules"] = rules_of(req.cloud, group["id"])
    return status, body


def rules_of(cloud: Cloud, group_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in cloud.security_group_rules.values() if r["security_group_id"] == group_id]


def show_group(cloud: Cloud, group: dict[str, Any]) -> dict[str, Any]:
    return {**neutron_show(group), "security_group_rules": rules_of(cloud, group["id"])}


@route("GET", "/network/v2.0/security-groups/{item_id}")
def show_security_group(req: Request) -> tuple[int, Any]:
    group = neutron_get(req.cloud.security_groups, req.params["item_id"], "Security group")
    return 200, {"security_group": show_group(req.cloud, group)}


@route("POST", "/network/v2.0/security-groups")
def create_security_group(req: Request) -> tuple[int, Any]:
    cloud = req.cloud
    body = req.body["security_group"]
    if len(cloud.security_groups) >= cloud.quotas["security_group"]:
        raise ApiError(409, "Quota exceeded for resources: ['security_group'].", "OverQuota")
    group = cloud.add_security_group(body.get("name", ""), body.get("description", ""))
    return 201, {"security_group": show_group(cloud, group)}


@route("PUT", "/network/v2.0/security-groups/{item_id}")
def update_security_group(req: Request) -> tuple[int, Any]:
    group = neutron_get(req.cloud.security_groups, req.params["item_id"], "Security group")
    for key in ("name", "description"):
        if key in req.body["security_group"]:
            group[key] = req.body["security_group"][key]
    return 200, {"security_group": show_group(req.cloud, group)}


@route("DELETE", "/network/v2.0/security-groups/{item_id}")
def delete_security_group(req: Request) -> tuple[int, Any]:
    cloud = req.cloud
    group = neutron_get(cloud.security_groups, req.params["item_id"], "Security group")
    in_use = [s["name"] for s in cloud.servers.values() if group["id"] in s["_security_groups"]]
    if in_use:
        raise ApiError(409, f"Security Group {group['id']} in use by servers {', '.join(in_use)}.",
                       "SecurityGroupInUse")
    cloud.security_groups.pop(group["id"])
    for rule_id in [r["id"] for r in rules_of(cloud, group["id"])]:
        cloud.security_group_rules.pop(rule_id)
    return 204, None


@route("GET", "/network/v2.0/security-group-rules")
def list_rules(req: Request) -> tuple[int, Any]:
    return neutron_list(req, req.cloud.security_group_rules, "security_group_rules")


@route("GET", "/network/v2.0/security-group-rules/{item_id}")
def show_rule(req: Request) -> tuple[int, Any]:
    rule = neutron_get(req.cloud.security_group_rules, req.params["item_id"], "Security group rule")
    return 200, {"security_group_rule": neutron_show(rule)}


@route("POST", "/network/v2.0/security-group-rules")
def create_rule(req: Request) -> tuple[int, Any]:
    if "security_group_rules" in req.body:  # bulk create, as openstacksdk does for several rules
        return 201, {"security_group_rules": [req.cloud.add_rule(r) for r in req.body["security_group_rules"]]}
    return 201, {"security_group_rule": req.cloud.add_rule(req.body["security_group_rule"])}


@route("DELETE", "/network/v2.0/security-group-rules/{item_id}")
def delete_rule(req: Request) -> tuple[int, Any]:
    neutron_get(req.cloud.security_group_rules, req.params["item_id"], "Security group rule")
    req.cloud.security_group_rules.pop(req.params["item_id"])
    return 204, None


@route("GET", "/network/v2.0/floatingips")
def list_floating_ips(req: Request) -> tuple[int, Any]:
    return neutron_list(req, req.cloud.floating_ips, "floatingips")


@route("GET", "/network/v2.0/floatingips/{item_id}")
def show_floating_ip(req: Request) -> tuple[int, Any]:
    return 200, {"floatingip": neutron_get(req.cloud.floating_ips, req.params["item_id"], "Floating IP")}


@route("POST", "/network/v2.0/floatingips")
def create_floating_ip(req: Request) -> tuple[int, Any]:
    return 201, {"floatingip": req.cloud.create_floating_ip(req.body["floatingip"])}


@route("PUT", "/network/v2.0/floatingips/{item_id}")
def update_floating_ip(req: Request) -> tuple[int, Any]:
    fip = neutron_get(req.cloud.floating_ips, req.params["item_id"], "Floating IP")
    body = req.body["floatingip"]
    if "port_id" in body:
        req.cloud.associate_floating_ip(fip, body["port_id"], body.get("fixed_ip_address"))
    if "description" in body:
        fip["description"] = body["description"]
    return 200, {"floatingip": fip}


@route("DELETE", "/network/v2.0/floatingips/{item_id}")
def delete_floating_ip(req: Request) -> tuple[int, Any]:
    neutron_get(req.cloud.floating_ips, req.params["item_id"], "Floating IP")
    req.cloud.floating_ips.pop(req.params["item_id"])
    return 204, None


@route("GET", "/network/v2.0/quotas/{project}")
@route("GET", "/network/v2.0/quotas/{project}/details")
def network_quotas(req: Request, ) -> tuple[int, Any]:
    cloud = req.cloud
    used = cloud.usage()
    keys = ("floatingip", "security_group", "security_group_rule")
    if req.params.get("_details"):
        return 200, {"quota": {k: {"limit": cloud.quotas[k], "used": used[k], "reserved": 0} for k in keys}}
    return 200, {"quota": {k: cloud.quotas[k] for k in keys}}


# ---------------------------------------------------------------------- Cinder
@route("GET", "/volume/v3/{project}/volumes")
@route("GET", "/volume/v3/{project}/volumes/detail")
def list_volumes(req: Request) -> tuple[int, Any]:
    volumes = [dict(v) for v in req.cloud.volumes.values()]
    name = req.arg("name")
    if name:
        volumes = [v for v in volumes if v["name"] == name]
    return 200, {"volumes": paginate(req, volumes)}


@route("GET", "/volume/v3/{project}/volumes/{volume_id}")
def show_volume(req: Request) -> tuple[int, Any]:
    volume = req.cloud.volumes.get(req.params["volume_id"])
    if volume is None:
        raise ApiError(404, f"Volume {req.params['volume_id']} could not be found.")
    return 200, {"volume": volume}


@route("DELETE", "/volume/v3/{project}/volumes/{volume_id}")
def delete_volume(req: Request) -> tuple[int, Any]:
    if req.cloud.volumes.pop(req.params["volume_id"], None) is None:
        raise ApiError(404, f"Volume {req.params['volume_id']} could not be found.")
    return 202, None


# ---------------------------------------------------------------------- HTTP plumbing
UNAUTHENTICATED = ("/identity",)
PUBLIC = {identity_versions, identity_v3, compute_version, image_versions, network_versions, volume_version}


class DoubleHandler(BaseHTTPRequestHandler):
    """Dispatch to the routes; JSON errors shaped like Nova's or Neutron's."""

    server: "DoubleHTTPServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (stdlib signature)
        if self.server.verbose:
            sys.stderr.write("openstack-double: " + format % args + "\n")

    def do_GET(self) -> None:  # noqa: N802  (stdlib naming)
        self.dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self.dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self.dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self.dispatch("PATCH")

    def dispatch(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip("/") or "/"
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        cloud = self.server.cloud
        with cloud.lock:
            cloud.requests.append((method, self.path))
            unavailable = cloud.faults.unavailable(method, path)
        if unavailable:
            self.reply_unavailable()
            return
        with cloud.lock:
            try:
                body = json.loads(raw) if raw else None
                handler, params = self.find_route(method, path)
                base = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
                req = Request(cloud, base, params, query, body, self.headers)
                if handler in PUBLIC:
                    pass
                elif not path.startswith(UNAUTHENTICATED):
                    req.token = self.authenticate(cloud)
                elif path.startswith("/identity/v3/auth/projects") or "/OS-FEDERATION/projects" in path:
                    req.token = self.authenticate(cloud, scoped=False)
                status, payload = handler(req)
                headers = req.response_headers
            except ApiError as err:
                status, payload, headers = err.status, error_body(path, err), {}
            except (KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
                status, payload, headers = 400, error_body(path, ApiError(400, f"Bad request: {err!r}")), {}
        self.reply(status, payload, headers)

    def find_route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for verb, regex, handler in ROUTES:
            match = regex.match(path)
            if verb == method and match:
                params = dict(match.groupdict())
                if path.endswith("/details"):
                    params["_details"] = "1"
                if path == "/compute/v2.1":
                    params["_exact"] = "1"
                return handler, params
        self.server.cloud.unknown_routes.append((method, self.path))
        if self.server.verbose:
            sys.stderr.write(f"openstack-double: UNKNOWN ROUTE {method} {self.path}\n")
        raise ApiError(404, f"The resource could not be found: {method} {path} (not modelled by the double).")

    def authenticate(self, cloud: Cloud, scoped: bool = True) -> dict[str, Any]:
        token_id = self.headers.get("X-Auth-Token", "")
        token = cloud.tokens.get(token_id)
        if token is None or token["expires"] < time.time() or (scoped and not token["scoped"]):
            raise ApiError(401, "The request you have made requires authentication.")
        return {"user_id": cloud.users[token["user"]]["id"], "user": token["user"]}

    def reply(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Openstack-Request-Id", "req-" + new_id())
        if self.path.startswith("/compute"):
            self.send_header("OpenStack-API-Version", f"compute {NOVA_MAX_MICROVERSION}")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


    def reply_unavailable(self) -> None:
        """503 from the load balancer in front of the API: an HTML page, no OpenStack headers."""
        data = UNAVAILABLE_PAGE.encode()
        self.send_response(503)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(data)


def error_body(path: str, err: ApiError) -> dict[str, Any]:
    if path.startswith("/network"):
        return {"NeutronError": {"type": err.kind, "message": err.message, "detail": ""}}
    if path.startswith("/identity"):
        return {"error": {"code": err.status, "title": err.kind, "message": err.message}}
    return {err.kind: {"code": err.status, "message": err.message}}


class DoubleHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], cloud: Cloud, verbose: bool = False) -> None:
        super().__init__(address, DoubleHandler)
        self.cloud = cloud
        self.verbose = verbose


class OpenStackDouble:
    """Start the double on 127.0.0.1 in a background thread; ``reset()`` restores the seed state."""

    def __init__(self, port: int = 0, verbose: bool = False) -> None:
        self.cloud = Cloud()
        self.httpd = DoubleHTTPServer(("127.0.0.1", port), self.cloud, verbose)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    def start(self) -> "OpenStackDouble":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ faults (reset() clears them)
    def nova_unavailable(self, times: int, method: str | None = None, path: str = "/compute") -> None:
        """The next ``times`` requests of ``method`` (any when None) whose path starts with ``path`` answer 503."""
        with self.cloud.lock:
            self.cloud.faults.bursts.append(Burst(times, method, path))

    def server_action_conflict(self, times: int, action: str | None = None,
                               task_state: str = "powering-off") -> None:
        """The next ``times`` server actions (only ``action``, e.g. os-start, when given) answer 409 Conflict."""
        with self.cloud.lock:
            self.cloud.faults.conflicts.append(Conflict(times, action, task_state))

    def servers_fail(self, times: int, flavor: str | None = None, message: str = NO_VALID_HOST,
                     code: int = 500) -> None:
        """The next ``times`` servers created (of ``flavor`` only, when given) go to ERROR with this fault."""
        with self.cloud.lock:
            self.cloud.faults.server_faults.append(ServerFault(times, flavor, code, message))

    def instances_quota_full_after(self, servers: int) -> None:
        """After ``servers`` more servers are created, the instances quota drops to what is then in use.

        As when the site lowers the allocation, or other members' servers take the rest, while a
        course is being created: its preflight passed, and Nova refuses the next server with 403.
        """
        with self.cloud.lock:
            if servers <= 0:
                self.cloud.quotas["instances"] = self.cloud.usage()["instances"]
            else:
                self.cloud.faults.quota_full_after = servers

    def faults_fired(self) -> list[str]:
        """What the faults did, in order ("503 POST /compute/v2.1/servers", "409 os-start", ...)."""
        with self.cloud.lock:
            return list(self.cloud.faults.fired)

    def reset(self) -> Cloud:
        with self.cloud.lock:
            fresh = Cloud()
            for name in fresh.__dataclass_fields__:
                if name != "lock":
                    setattr(self.cloud, name, getattr(fresh, name))
        return self.cloud
