"""playbooks/image.yml on OpenStack against the API double, and the course preflight's image profile check.

The builder is a real server of the double (with its key pair, security group and
floating IP); the double's servers cannot be reached over SSH, so the configuration and
generalisation run against a podman container through image_builder_connection. No image
role runs there (image_configure_roles: []): configure.yml's plumbing and the
generalisation are what the container proves; test_image_aws.py runs a role.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from image_helpers import (
    KEPT,
    MACHINE_STATE,
    builder_connection,
    builder_container,
    collection_version,
    existing,
    extra_vars,
    is_project_commit,
    machine_id_size,
    seed_machine_state,
)
from openstack_double.site import PASSWORD_CLOUD, OpenStackSite

CONTROLLER = "198.51.100.7/32"


@pytest.fixture(scope="module")
def builder() -> Iterator[str]:
    with builder_container("imgos") as name:
        yield name


class ServerWatch(threading.Thread):
    """Keeps every server, key pair and security group the double holds while a build runs."""

    def __init__(self, site: OpenStackSite) -> None:
        super().__init__(daemon=True)
        self.cloud = site.cloud
        self.stop = threading.Event()
        self.servers: dict[str, dict[str, Any]] = {}
        self.keypairs: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            with self.cloud.lock:
                self.servers.update(self.cloud.servers)  # the same dicts: later changes show too
                self.keypairs.update(copy.deepcopy(self.cloud.keypairs))
                self.groups.update(copy.deepcopy(self.cloud.security_groups))
                self.rules.update(copy.deepcopy(self.cloud.security_group_rules))
            self.stop.wait(0.2)

    def __enter__(self) -> "ServerWatch":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.join(timeout=10)


def seed_image(site: OpenStackSite, name: str, **properties: str) -> str:
    with site.cloud.lock:
        return site.cloud.add_image(name, visibility="private", **properties)["id"]


def ours(profile_name: str, date: str) -> dict[str, str]:
    return {"ManagedBy": "scipion_cloud", "Profile": profile_name, "BuildDate": date}


def build_args(container: str, output: Path, **extra: Any) -> list[str]:
    values = {"image_builder_connection": builder_connection(container), "image_output_dir": str(output),
              "image_configure_roles": [], "image_openstack_cloud": PASSWORD_CLOUD,
              "image_openstack_flavor": "m1.large"}
    values.update(extra)
    return ["-e", "profile=scipion-3", "-e", "provider=openstack", "-e", f"image_controller_cidr={CONTROLLER}",
            *extra_vars(**values)]


def test_build_snapshots_the_builder_with_its_manifest_and_removes_it(openstack_site: OpenStackSite, run_playbook,
                                                                      builder, tmp_path: Path) -> None:
    site = openstack_site
    cloud = site.cloud
    base = next(i for i in cloud.images.values() if i["name"] == "Ubuntu 24.04")
    old = {m: seed_image(site, f"i2pc-cloud-training-scipion-3-2025{m}01-000000-v0.0.9", **ours("scipion-3", f"2025-{m}-01T00:00:00Z"))
           for m in ("01", "02", "03")}
    other_profile = seed_image(site, "i2pc-cloud-training-scipion-1.1-20240101", **ours("scipion-1.1", "2024-01-01T00:00:00Z"))
    with cloud.lock:
        flavor = next(f for f in cloud.flavors.values() if f["name"] == "m1.small")
        in_use = cloud.create_server({"name": "fedcloud-training-01", "imageRef": old["01"], "flavorRef": flavor["id"],
                                      "metadata": {"Course": "fedcloud", "ManagedBy": "scipion_cloud"}}, "someone")
        floating_before = len(cloud.floating_ips)
    seed_machine_state(builder)
    output = tmp_path / "images"

    with ServerWatch(site) as watch:
        result = run_playbook("image.yml", *build_args(builder, output, image_keep=2), env=site.env())
    assert result.returncode == 0, result.stdout[-6000:]

    # The builder: the base image of the profile's OS, the flavour, the build's key pair, a group open to
    # the controller only, a floating IP; stopped before it was captured.
    builders = [s for s in watch.servers.values() if s["metadata"].get("Purpose") == "image-builder"]
    assert len(builders) == 1, watch.servers
    (server,) = builders
    build_id = server["metadata"]["BuildId"]
    assert server["image"]["id"] == base["id"] and cloud.flavors[server["_flavor_id"]]["name"] == "m1.large"
    assert server["metadata"] == {"ManagedBy": "scipion_cloud", "Purpose": "image-builder", "BuildId": build_id,
                                  "Profile": "scipion-3"}
    assert server["key_name"] == f"scipion-image-{build_id}" and server["key_name"] in watch.keypairs
    (group_id,) = server["_security_groups"]
    assert watch.groups[group_id]["name"] == f"scipion-image-{build_id}"
    ingress = {(r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"]) for r in watch.rules.values()
               if r["security_group_id"] == group_id and r["direction"] == "ingress"}
    assert ingress == {(22, 22, CONTROLLER)}
    assert server["_actions"][-2:] == ["os-stop", "createImage"]

    # The image: versioned name, the manifest as properties.
    with cloud.lock:
        (image,) = [i for i in cloud.images.values() if i.get("BuildId") == build_id]
    assert re.fullmatch(rf"i2pc-cloud-training-scipion-3-\d{{8}}-\d{{6}}-v{re.escape(collection_version())}", image["name"])
    assert image["status"] == "active" and image["image_type"] == "snapshot" and image["base_image_ref"] == base["id"]
    assert (image["ManagedBy"], image["Profile"], image["Roles"]) == ("scipion_cloud", "scipion-3", "none")
    assert image["BaseImage"] == f"{base['id']} Ubuntu 24.04" and image["BaseOS"] == "Ubuntu 24.04"
    assert is_project_commit(image["CollectionCommit"])
    assert image["component:scipion"] == "3 scipion-pyworkflow==3.11.7 scipion-em==3.11.1 scipion-app==3.8.3"
    assert image["component:cuda"] == "12.4 default 12.4"
    assert image["artifact:cuda_12.4.1_550.54.15_linux.run"] == \
        "367d2299b3a4588ab487a6d27276ca5d9ead6e394904f18bccb9e12433b9c4fb"
    assert "Name" not in image, "the image's name is its own field on OpenStack"

    # Retention: newest 2 kept, the older one deleted, the one a server runs from kept; other profiles untouched.
    with cloud.lock:
        left = set(cloud.images)
    assert {image["id"], old["03"], old["01"], other_profile, base["id"]} <= left and old["02"] not in left
    assert f"Kept although older, because a machine uses them: {old['01']}" in result.stdout

    # Nothing of the builder is left: server, floating IP, key pair, security group, local key.
    with cloud.lock:
        assert [s["id"] for s in cloud.servers.values()] == [in_use["id"]]
        assert not [k for k in cloud.keypairs if k.startswith("scipion-image-")]
        assert [g["name"] for g in cloud.security_groups.values()] == ["default"]
        assert len(cloud.floating_ips) == floating_before
        assert cloud.unknown_routes == []
    assert f"Removed: server {server['id']}, key-pair scipion-image-{build_id}, security-group {group_id}." in result.stdout
    assert f"No image-builder resources are left in {PASSWORD_CLOUD}." in result.stdout
    assert not list(output.glob(".build-*"))

    manifest = json.loads((output / f"{image['name']}.json").read_text())
    assert manifest["images"] == {PASSWORD_CLOUD: image["id"]} and manifest["roles"] == []
    assert existing(builder, MACHINE_STATE) == [] and existing(builder, KEPT) == KEPT
    assert machine_id_size(builder) == 0


def test_unreachable_builder_is_removed_all_the_same(openstack_site: OpenStackSite, run_playbook,
                                                     tmp_path: Path) -> None:
    site = openstack_site
    output = tmp_path / "images"
    # A container that does not exist: the builder is created, then cannot be reached.
    args = build_args("imgos-missing-container", output, image_ssh_timeout=5)
    with ServerWatch(site) as watch:
        result = run_playbook("image.yml", *args, env=site.env())
    assert result.returncode != 0
    assert len(watch.servers) == 1
    with site.cloud.lock:
        assert site.cloud.servers == {} and not [k for k in site.cloud.keypairs if k.startswith("scipion-image-")]
        assert [g["name"] for g in site.cloud.security_groups.values()] == ["default"]
        assert not [i for i in site.cloud.images.values() if i.get("ManagedBy")]
    assert "No image-builder resources are left" in result.stdout and not list(output.glob(".build-*"))


def test_failed_configuration_on_the_builder_removes_it_and_fails_with_the_error(
        openstack_site: OpenStackSite, run_playbook, builder, tmp_path: Path) -> None:
    """A main-runner builder whose configuration fails in this run's own play: removed, then the run names the error."""
    site = openstack_site
    output = tmp_path / "images"
    # An invalid value of the desktop role makes its argument check fail at once on the builder.
    args = build_args(builder, output, image_configure_roles=["desktop"], profile_vars={"desktop_idle_stop_minutes": "soon"})
    with ServerWatch(site) as watch:
        result = run_playbook("image.yml", *args, env=site.env())
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED!")]
    assert len(lines) == 1, result.stdout[-4000:]
    message = lines[0]
    assert "Configuring the builder with profile scipion-3 failed" in message and "desktop_idle_stop_minutes" in message, message
    assert "The builder and its temporaries were removed" in message

    (server,) = watch.servers.values()
    build_id = server["metadata"]["BuildId"]
    with site.cloud.lock:
        assert site.cloud.servers == {} and not [k for k in site.cloud.keypairs if k.startswith("scipion-image-")]
        assert [g["name"] for g in site.cloud.security_groups.values()] == ["default"]
        assert not [i for i in site.cloud.images.values() if i.get("BuildId") == build_id], "no image from a failed build"
    assert "os-stop" not in server["_actions"], "a failed builder is not captured"
    assert f"Removed: server {server['id']}, key-pair scipion-image-{build_id}" in result.stdout
    assert not list(output.glob(".build-*")) and not list(output.glob("*.json"))


def test_builder_that_becomes_unreachable_while_configured_is_removed_all_the_same(
        openstack_site: OpenStackSite, run_playbook, tmp_path: Path) -> None:
    """The builder answers its login, cloud-init and the configure role's Python probe, then is gone: the run goes on to remove it."""
    site = openstack_site
    output = tmp_path / "images"
    with builder_container("imgosgone") as container:
        # A podman that removes the container before the builder's fourth command (the configure role's first module).
        wrapper = tmp_path / "podman-then-gone"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"count={tmp_path}/execs\n"
            'if [ "$1" = exec ]; then\n'
            '  n=$(( $(cat "$count" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$count"\n'
            f'  if [ "$n" -gt 3 ]; then podman rm --force {container} >/dev/null 2>&1; fi\n'
            "fi\n"
            'exec podman "$@"\n')
        wrapper.chmod(0o755)
        connection = {**builder_connection(container), "ansible_podman_executable": str(wrapper)}
        args = build_args(container, output, image_builder_connection=connection, image_configure_roles=["desktop"])
        with ServerWatch(site) as watch:
            result = run_playbook("image.yml", *args, env=site.env())
    assert result.returncode != 0
    (server,) = watch.servers.values()
    assert f"fatal: [{server['name']}]: UNREACHABLE!" in result.stdout, result.stdout[-4000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED!")]
    assert len(lines) == 1, result.stdout[-4000:]
    assert f"The builder {server['name']} left the run before it was configured and generalised" in lines[0], lines[0]
    with site.cloud.lock:
        assert site.cloud.servers == {} and not [k for k in site.cloud.keypairs if k.startswith("scipion-image-")]
        assert not [i for i in site.cloud.images.values() if i.get("BuildId") == server["metadata"]["BuildId"]]
    assert "os-stop" not in server["_actions"], "a builder that was not configured is not captured"
    assert "No image-builder resources are left" in result.stdout and not list(output.glob(".build-*"))


def course(image: str, profile_name: str = "scipion-1.1") -> dict[str, Any]:
    return {
        "description": "OpenStack image profile check", "provider": "openstack", "profile": profile_name, "seats": 1,
        "access": {"ssh_cidrs": ["198.18.0.0/15"], "web_cidrs": ["0.0.0.0/0"]},
        "schedule": {"days": 1, "hours_up_per_day": 8},
        "openstack": {"cloud": PASSWORD_CLOUD, "image": image, "flavor": "g1.c06r12"},
    }


def test_preflight_refuses_an_image_of_another_profile_and_names_the_fitting_ones(
        openstack_site: OpenStackSite, run_playbook, course_catalogue: Callable[..., list[str]]) -> None:
    site = openstack_site
    seed_image(site, "scipion-3-image", **ours("scipion-3", "2026-01-01T00:00:00Z"))
    seed_image(site, "scipion-1.1-image", **ours("scipion-1.1", "2026-01-01T00:00:00Z"))
    args = course_catalogue("osprofile", course("scipion-3-image"))

    result = run_playbook("plan.yml", *args, env=site.env())
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert "Image scipion-3-image was built from profile scipion-3, but the course uses profile scipion-1.1." in text, text[-3000:]
    assert "Images built from scipion-1.1: scipion-1.1-image; set openstack.image to one of them." in text
    assert "course_image_profile_check=false" in text

    result = run_playbook("plan.yml", *args, "-e", "course_image_profile_check=false", env=site.env())
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Not refused: course_image_profile_check=false." in " ".join(result.stdout.split())

    # The site's own images (no ManagedBy property) are not judged.
    args = course_catalogue("osplain", course("scipion-1.1-course"))
    result = run_playbook("plan.yml", *args, env=site.env())
    assert result.returncode == 0, result.stdout[-3000:]
    assert "was not built by the image role" in " ".join(result.stdout.split())
