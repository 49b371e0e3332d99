"""The course image's manifest, its flat form for AWS tags and OpenStack image properties,
and the retention and audit rules of the image roles.

The manifest says what an image holds: the profile it was built from, every component
and version the profile names, the checksum of every external file the profile declares
({name, url, sha256} anywhere in it), the collection's version and commit, and when it
was built. The image role writes it as JSON next to the image and as tags (AWS: at most
50 tags per resource, values up to 256 characters) or properties (OpenStack Glance:
values up to 255 characters).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.course_names import MANAGED_BY

UNCONFIRMED = "unconfirmed"
AWS_MAX_TAGS = 50
AWS_MAX_VALUE = 256
AWS_MAX_KEY = 128
GLANCE_MAX_PROPERTIES = 128
GLANCE_MAX_VALUE = 255
DEB_VERSION_RE = re.compile(r"^[A-Za-z0-9]+_(\d[^_]*)_")
TARBALL_VERSION_RE = re.compile(r"-v?(\d+(?:\.\d+)+)\.(?:tar\.gz|tgz|zip)$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _is_artifact(value: Any) -> bool:
    return isinstance(value, dict) and {"name", "url", "sha256"} <= set(value)


def _walk_artifacts(value: Any) -> list[dict[str, Any]]:
    """Every {name, url, sha256} mapping anywhere in the profile, in document order."""
    if _is_artifact(value):
        return [value]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _walk_artifacts(v)]
    if isinstance(value, list):
        return [a for v in value for a in _walk_artifacts(v)]
    return []


def image_artifacts(profile: dict[str, Any], confirmed: dict[str, Any] | None = None) -> dict[str, str]:
    """File name -> sha256 for every artifact of the profile; operator-confirmed checksums fill the gaps.

    A confirmed entry is a sha256, or an entry of the artifact lock ({sha256, size, ...}).
    """
    confirmed = {name: (entry.get("sha256", "") if isinstance(entry, dict) else entry)
                 for name, entry in (confirmed or {}).items()}
    found: dict[str, str] = {}
    for artifact in _walk_artifacts(profile):
        checksum = artifact.get("sha256") or confirmed.get(artifact["name"]) or ""
        found[artifact["name"]] = checksum.lower() if SHA256_RE.match(str(checksum).lower()) else UNCONFIRMED
    return found


def _version_from_name(artifact: dict[str, Any] | None, pattern: re.Pattern[str]) -> str:
    name = (artifact or {}).get("name", "")
    match = pattern.search(name)
    return match.group(1) if match else name or "unknown"


def image_components(profile: dict[str, Any]) -> dict[str, str]:
    """Component -> version, as the profile pins them. GPU components only for GPU profiles."""
    components: dict[str, str] = {}
    if profile.get("gpu", False):
        if profile.get("nvidia_driver_branch"):
            components["nvidia_driver"] = f"{profile['nvidia_driver_branch']} {profile.get('nvidia_driver_method', 'package')}"
        toolkits = [str(t.get("version")) for t in profile.get("cuda_toolkits", [])]
        if toolkits:
            default = profile.get("cuda_default_version", toolkits[-1])
            components["cuda"] = f"{' '.join(toolkits)} default {default}"
        if profile.get("virtualgl_deb"):
            version = _version_from_name(profile["virtualgl_deb"], DEB_VERSION_RE)
            components["virtualgl"] = f"{version} {profile.get('virtualgl_backend', 'egl')}"
    if profile.get("turbovnc_server") == "tigervnc":
        components["vnc_server"] = "tigervnc distro"
    elif profile.get("turbovnc_deb"):
        components["vnc_server"] = "turbovnc " + _version_from_name(profile["turbovnc_deb"], DEB_VERSION_RE)
    if profile.get("novnc_source") == "distro":
        components["novnc"] = "distro"
    elif profile.get("novnc_release"):
        components["novnc"] = _version_from_name(profile["novnc_release"], TARBALL_VERSION_RE)
    major = profile.get("scipion_major_version")
    if major is not None:
        if str(major) == "1":
            components["scipion"] = (f"1 release {profile.get('scipion_release_version', 'unknown')}"
                                     f" devel {profile.get('scipion_devel_version', 'unknown')}")
        else:
            components["scipion"] = f"{major} " + " ".join(profile.get("scipion_pip_packages", []))
    if profile.get("scipion_plugins"):
        components["scipion_plugins"] = " ".join(profile["scipion_plugins"])
    if profile.get("scipion_em_packages"):
        components["em_packages"] = " ".join(p["package"] for p in profile["scipion_em_packages"])
    if profile.get("scipion_binaries") and profile.get("scipion_install_binaries", True):
        components["em_binaries"] = " ".join(b["name"] for b in profile["scipion_binaries"])
    data = [d["name"] for d in profile.get("course_data_datasets", [])]
    data += [p["name"] for p in profile.get("course_data_projects", [])]
    if data:
        components["course_data"] = " ".join(data)
    return components


def image_manifest(profile: dict[str, Any], profile_name: str, roles: list[str], build: dict[str, Any],
                   collection: dict[str, Any], confirmed: dict[str, str] | None = None,
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole manifest: what the image was built from and with."""
    base_os = profile.get("base_os") or {}
    return {
        "profile": profile_name,
        "description": profile.get("description", ""),
        "base_os": f"{base_os.get('distribution', '?')} {base_os.get('version', '?')}",
        "gpu": bool(profile.get("gpu", False)),
        "roles": list(roles),
        "components": image_components(profile),
        "artifacts": image_artifacts(profile, confirmed),
        "profile_overrides": dict(overrides or {}),
        "build": dict(build),
        "collection": dict(collection),
    }


def _fold(key: str, value: str, max_value: int) -> dict[str, str]:
    """A value longer than a tag allows, cut into key:1, key:2, ... (space-separated words kept whole)."""
    if len(value) <= max_value:
        return {key: value}
    parts: list[str] = []
    current = ""
    for word in value.split(" "):
        while len(word) > max_value:
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:max_value])
            word = word[max_value:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > max_value:
            parts.append(current)
            current = word
        else:
            current = candidate
    if current:
        parts.append(current)
    return {f"{key}:{n}": part for n, part in enumerate(parts, 1)}


def _pack(entries: list[str], max_value: int) -> list[str]:
    """Join entries with spaces into as few values of at most max_value characters as fit."""
    packed: list[str] = []
    for entry in entries:
        if packed and len(packed[-1]) + 1 + len(entry) <= max_value:
            packed[-1] += " " + entry
        else:
            packed.append(entry)
    return packed


def _configured_on(configured: dict[str, Any] | None) -> str:
    if not configured:
        return ""
    return (f"{configured.get('os', '?')} (Python {configured.get('python', '?')}), "
            f"ansible-core {configured.get('ansible_core', '?')} ({configured.get('runner', 'main')} runner)")


def image_tags(manifest: dict[str, Any], extra: dict[str, Any] | None = None, max_tags: int = AWS_MAX_TAGS,
               max_value: int = AWS_MAX_VALUE, max_key: int = AWS_MAX_KEY) -> dict[str, str]:
    """The manifest as flat string key/values: one per fact, one per component, one per artifact.

    Over max_tags (or with a file name too long for a key), the artifacts are folded into
    "artifacts:N" values of "file=sha256" words; still over, the build is refused with the
    count, since a cut manifest would lie.
    """
    build = manifest.get("build", {})
    collection = manifest.get("collection", {})
    head: dict[str, str] = {
        "ManagedBy": MANAGED_BY,
        "Profile": manifest["profile"],
        "BuildId": str(build.get("id", "")),
        "BuildDate": str(build.get("date", "")),
        "BaseOS": manifest.get("base_os", ""),
        "BaseImage": str(build.get("base_image", "")),
        "Collection": f"{collection.get('name', 'i2pc.scipion_cloud')} {collection.get('version', '?')}",
        "CollectionCommit": str(collection.get("commit", "unknown")),
        "Roles": " ".join(manifest.get("roles", [])) or "none",
        # What the builder really was, read off it after configuration (BaseOS is what the profile asks for).
        "ConfiguredOn": _configured_on(manifest.get("configured_on")),
    }
    head = {k: v for k, v in head.items() if v}
    for key, value in (extra or {}).items():
        head.setdefault(str(key), str(value))
    tags: dict[str, str] = {}
    for key, value in head.items():
        tags.update(_fold(key, value, max_value))
    for name, version in manifest.get("components", {}).items():
        tags.update(_fold(f"component:{name}", version, max_value))
    artifacts = manifest.get("artifacts", {})
    one_each = {f"artifact:{name}": checksum for name, checksum in artifacts.items()}
    if len(tags) + len(one_each) <= max_tags and all(len(key) <= max_key for key in one_each):
        return {**tags, **one_each}
    packed = _pack([f"{name}={checksum}" for name, checksum in artifacts.items()], max_value)
    folded = {f"artifacts:{n}": value for n, value in enumerate(packed, 1)}
    if len(tags) + len(folded) <= max_tags:
        return {**tags, **folded}
    raise AnsibleFilterError(
        f"The manifest of profile {manifest['profile']} needs {len(tags) + len(folded)} tags even with its "
        f"{len(artifacts)} artifact checksums folded, and an image takes at most {max_tags}: "
        f"{len(tags)} for the build facts and components, {len(folded)} for the checksums. Declare fewer "
        "artifacts or components in the profile, or drop extra tags (image_tags); a cut manifest is not written.")


def image_cidr_problems(cidrs: list[str], allow_world: bool = False) -> list[str]:
    """What is wrong with the networks the builder lets SSH in from (empty: nothing)."""
    if not cidrs:
        return ["image_controller_cidr is not set: give the controller's public address as CIDR, for example "
                "-e image_controller_cidr=203.0.113.7/32 (curl https://checkip.amazonaws.com prints the address)."]
    problems = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(str(cidr), strict=True)
        except ValueError as exc:
            problems.append(f"image_controller_cidr: '{cidr}' is not a network in CIDR notation ({exc}); "
                            "write one address as 203.0.113.7/32.")
            continue
        if network.prefixlen == 0 and not allow_world:
            problems.append(f"image_controller_cidr: {cidr} opens the builder's SSH to the whole Internet; give the "
                            "controller's address (x.x.x.x/32), or set image_allow_world_ssh=true if you mean it.")
    return problems


def _newest_first(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sorted by build date, newest first; equal dates keep their order (as Jinja's sort does)."""
    return sorted(images, key=lambda image: str(image["date"]).lower(), reverse=True)


def image_aws_owned(amis: list[dict[str, Any]], region: str) -> list[dict[str, Any]]:
    """The profile's AMIs (ec2_ami_info, already filtered by tag) as retention entries, newest first.

    An entry is {id, name, region, date, snapshots}; the date is the BuildDate tag, the AMI's
    creation date when the tag is missing.
    """
    owned = []
    for ami in amis:
        tags = ami.get("tags") or {}
        snapshots = [(mapping.get("ebs") or {}).get("snapshot_id", "") for mapping in ami.get("block_device_mappings") or []]
        owned.append({"id": ami["image_id"], "name": ami.get("name", ""), "region": region,
                      "date": tags.get("BuildDate", ami.get("creation_date")),
                      "snapshots": [snapshot for snapshot in snapshots if snapshot]})
    return _newest_first(owned)


def image_openstack_owned(images: list[dict[str, Any]], profile: str, cloud: str,
                          project_id: str = "") -> list[dict[str, Any]]:
    """The project's images of the profile (Glance properties ManagedBy=scipion_cloud, Profile), newest first.

    An entry is {id, name, region, date}: region is the cloud, date the BuildDate property (the
    creation time when it is missing). Images of another project (owner set and not project_id)
    are never ours to delete, whatever their properties say.
    """
    owned = []
    for image in images:
        properties = image.get("properties") or {}
        owner = image["owner"] if "owner" in image else image.get("owner_id", "")
        if (properties.get("ManagedBy", "") == MANAGED_BY and properties.get("Profile", "") == profile
                and owner in ("", project_id)):
            owned.append({"id": image["id"], "name": image["name"], "region": cloud,
                          "date": properties.get("BuildDate", image.get("created_at"))})
    return _newest_first(owned)


def image_local_owned(podman_images: list[dict[str, Any]], repository: str) -> list[dict[str, Any]]:
    """The repository's podman images (podman_image_info: `podman image inspect`) as retention entries, newest first.

    An image belongs to the repository when one of its tags is <repository>:<tag>; one entry per
    image id (an image with two tags, the new one and latest, counts once): {id, name, date}.
    """
    owned: dict[str, dict[str, Any]] = {}
    for image in podman_images:
        tags = [tag for tag in image.get("RepoTags") or [] if tag.rpartition(":")[0] == repository]
        if tags:
            owned.setdefault(image["Id"], {"id": image["Id"], "name": sorted(tags)[0], "date": image["Created"]})
    return _newest_first(list(owned.values()))


def image_retention(images: list[dict[str, Any]], keep: int, used_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """What the retention does with images sorted newest first: keep the first `keep`.

    Of the older ones, those a machine uses (their id in used_ids) are kept too ("in_use"),
    the others are deleted ("delete"). Refuses to keep fewer than one image: the new one.
    """
    keep = int(keep)
    if keep < 1:
        raise AnsibleFilterError(f"image_keep is {keep}: keep at least 1 image (the new one).")
    used = set(used_ids or [])
    beyond = list(images)[keep:]
    return {"delete": [image for image in beyond if image["id"] not in used],
            "in_use": [image for image in beyond if image["id"] in used]}


def _leftover(kind: str, ident: Any, build_id: Any) -> str:
    return f"{kind} {ident} (build {build_id or '?'})"


def image_aws_leftovers(instances: list[dict[str, Any]], key_pairs: list[dict[str, Any]],
                        security_groups: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> list[str]:
    """Image-builder resources (found by their Purpose tag) as "<type> <id> (build <build id>)"."""
    found = []
    for kind, items, key in (("instance", instances, "instance_id"), ("key-pair", key_pairs, "key_name"),
                             ("security-group", security_groups, "group_id"), ("volume", volumes, "id")):
        for item in items:
            found.append(_leftover(kind, item[key], (item.get("tags") or {}).get("BuildId", "?")))
    return found


def image_openstack_leftovers(servers: list[dict[str, Any]], key_pairs: list[dict[str, Any]],
                              security_groups: list[dict[str, Any]], prefix: str = "scipion-image-") -> list[str]:
    """Image-builder resources of an OpenStack project as "<type> <id> (build <build id>)".

    Servers are found by their metadata Purpose=image-builder; key pairs and security groups by
    their name, prefix + build id (OpenStack tags neither).
    """
    found = []
    for server in servers:
        metadata = server.get("metadata") or {}
        if metadata.get("Purpose") == "image-builder":
            found.append(_leftover("server", server["id"], metadata.get("BuildId", "?")))
    for key in key_pairs:
        if key["name"].startswith(prefix):
            found.append(_leftover("key-pair", key["name"], key["name"][len(prefix):]))
    for group in security_groups:
        if group["name"].startswith(prefix):
            found.append(_leftover("security-group", group["id"], group["name"][len(prefix):]))
    return found


def image_openstack_ssh_rules(cidrs: list[str]) -> list[dict[str, Any]]:
    """The builder's security group rules: all egress, SSH in from each controller network only."""
    rules: list[dict[str, Any]] = [{"direction": "egress", "ether_type": "IPv4"},
                                   {"direction": "egress", "ether_type": "IPv6"}]
    for cidr in cidrs:
        rules.append({"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                      "remote_ip_prefix": cidr, "ether_type": "IPv6" if ":" in cidr else "IPv4"})
    return rules


def image_podman_label_changes(labels: dict[str, Any], namespace: str = MANAGED_BY) -> list[str]:
    """`podman commit --change` arguments setting each label as <namespace>.<key>, in key order.

    Dockerfile LABEL syntax; JSON strings are valid quoted keys and values there.
    """
    return [f"--change=LABEL {json.dumps(f'{namespace}.{key}')}={json.dumps(str(value))}"
            for key, value in sorted(labels.items(), key=lambda item: str(item[0]).lower())]


class FilterModule:
    """Image manifest, retention and audit filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "image_manifest": image_manifest,
            "image_components": image_components,
            "image_artifacts": image_artifacts,
            "image_tags": image_tags,
            "image_cidr_problems": image_cidr_problems,
            "image_aws_owned": image_aws_owned,
            "image_openstack_owned": image_openstack_owned,
            "image_local_owned": image_local_owned,
            "image_retention": image_retention,
            "image_aws_leftovers": image_aws_leftovers,
            "image_openstack_leftovers": image_openstack_leftovers,
            "image_openstack_ssh_rules": image_openstack_ssh_rules,
            "image_podman_label_changes": image_podman_label_changes,
        }
