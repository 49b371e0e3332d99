"""The course image's manifest, and its flat form for AWS tags and OpenStack image properties.

The manifest says what an image holds: the profile it was built from, every component
and version the profile names, the checksum of every external file the profile declares
({name, url, sha256} anywhere in it), the collection's version and commit, and when it
was built. The image role writes it as JSON next to the image and as tags (AWS: at most
50 tags per resource, values up to 256 characters) or properties (OpenStack Glance:
values up to 255 characters).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible.errors import AnsibleFilterError

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
        "ManagedBy": "scipion_cloud",
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


class FilterModule:
    """Image manifest filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "image_manifest": image_manifest,
            "image_components": image_components,
            "image_artifacts": image_artifacts,
            "image_tags": image_tags,
            "image_cidr_problems": image_cidr_problems,
        }
