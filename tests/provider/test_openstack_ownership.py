"""Ownership on OpenStack (against the API double): the course deletes what its record says it created.

Nova key pairs and Neutron groups of the double carry no course tags, so only the record
(output/<course>/resources.json) tells the course's own from a reused one or one made by
hand under the course's names; servers with the course's metadata made by somebody else
are left alone until adopted.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable

from openstack_double.site import PASSWORD_CLOUD, OpenStackSite
from test_openstack import course, course_servers

Runner = Callable[..., subprocess.CompletedProcess[str]]
HAND_MADE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHandMadeHandMadeHandMadeHandMadeHandMade0 someone@else"


def seed_key(site: OpenStackSite, name: str, public_key: str = HAND_MADE_KEY) -> None:
    with site.cloud.lock:
        site.cloud.keypairs[name] = {"name": name, "type": "ssh", "public_key": public_key, "fingerprint": "00:11",
                                     "user_id": "someone", "created_at": "2026-01-01T00:00:00Z", "deleted": False,
                                     "deleted_at": None, "updated_at": None, "id": len(site.cloud.keypairs) + 1}


def seed_group(site: OpenStackSite, name: str, description: str) -> str:
    with site.cloud.lock:
        group = site.cloud.add_security_group(name, description)
        site.cloud.add_rule({"security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
                             "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                             "remote_ip_prefix": "10.0.0.0/8"})
        return group["id"]


def seed_server(site: OpenStackSite, name: str, metadata: dict[str, str]) -> str:
    with site.cloud.lock:
        image = next(i for i in site.cloud.images.values() if i["name"] == "Ubuntu 24.04")
        flavor = next(f for f in site.cloud.flavors.values() if f["name"] == "m1.small")
        network = next(n for n in site.cloud.networks.values() if n["name"] == "training-net")
        return site.cloud.create_server({"name": name, "imageRef": image["id"], "flavorRef": flavor["id"],
                                         "networks": [{"uuid": network["id"]}], "metadata": metadata}, "someone")["id"]


def groups(site: OpenStackSite) -> dict[str, str]:
    with site.cloud.lock:
        return {g["id"]: g["name"] for g in site.cloud.security_groups.values()}


def rules_of(site: OpenStackSite, group_id: str) -> list[tuple[Any, ...]]:
    with site.cloud.lock:
        return sorted((r["direction"], r["protocol"] or "", r["port_range_min"] or 0, r["remote_ip_prefix"] or "")
                      for r in site.cloud.security_group_rules.values() if r["security_group_id"] == group_id)


def status_of(site: OpenStackSite, server_id: str) -> str:
    with site.cloud.lock:
        return site.cloud.servers[server_id]["status"]


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_reused_and_look_alike_keys_and_groups_survive_teardown(openstack_site: OpenStackSite, run_playbook: Runner,
                                                               course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    site = openstack_site
    seed_key(site, "shared-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISharedSharedSharedSharedSharedShared0 institute")
    shared = seed_group(site, "shared-sg", "the institute's group")
    seed_key(site, "ostest-key")                               # named like the course's own, made by hand
    look_alike = seed_group(site, "ostest-sg", "made by hand")
    shared_rules, look_alike_rules = rules_of(site, shared), rules_of(site, look_alike)
    args = course_catalogue("ostest", course(site, seats=2, egi=False, key_pair="shared-key", security_group="shared-sg"))
    output = tmp_path / "output" / "ostest"

    provisioned = run_playbook("provision.yml", *args, env=site.env())
    assert provisioned.returncode == 0, provisioned.stdout[-4000:]
    servers = course_servers(site, "ostest")
    assert len(servers) == 2
    with site.cloud.lock:
        assert all(s["key_name"] == "shared-key" and s["_security_groups"] == [shared] for s in servers.values())
    entry = json.loads((output / "resources.json").read_text())["openstack"][PASSWORD_CLOUD]
    assert sorted(entry["servers"]) == sorted(s["id"] for s in servers.values())
    assert len(entry["floating_ips"]) == 2 and "key_pair" not in entry and "security_group" not in entry

    teardown = run_playbook("teardown.yml", *args, "-e", "confirm_teardown=ostest", env=site.env())
    assert teardown.returncode == 0, teardown.stdout[-4000:]
    assert "nothing tagged with it is left" in teardown.stdout
    assert course_servers(site, "ostest") == {}
    with site.cloud.lock:
        assert sorted(site.cloud.keypairs) == ["ostest-key", "shared-key"]
        assert site.cloud.keypairs["ostest-key"]["public_key"] == HAND_MADE_KEY
        assert not site.cloud.floating_ips
    assert groups(site)[shared] == "shared-sg" and groups(site)[look_alike] == "ostest-sg"
    assert rules_of(site, shared) == shared_rules and rules_of(site, look_alike) == look_alike_rules


def test_hand_made_group_of_the_course_name_is_refused_and_kept(openstack_site: OpenStackSite, run_playbook: Runner,
                                                                course_catalogue: Callable[..., list[str]]) -> None:
    site = openstack_site
    look_alike = seed_group(site, "ostest-sg", "made by hand")
    rules = rules_of(site, look_alike)
    args = course_catalogue("ostest", course(site, seats=1, egi=False))

    refused = run_playbook("provision.yml", *args, env=site.env())
    assert refused.returncode != 0
    text = one_line(refused.stdout)
    assert (f"Security group ostest-sg ({look_alike}) exists in cloud {PASSWORD_CLOUD} "
            "but the course did not create it") in text, text[-3000:]
    assert "set openstack.security_group: ostest-sg" in text and f"-e course_adopt={look_alike}" in text
    assert course_servers(site, "ostest") == {}
    with site.cloud.lock:
        assert "ostest-key" not in site.cloud.keypairs, "refused before creating anything"

    teardown = run_playbook("teardown.yml", *args, "-e", "confirm_teardown=ostest", env=site.env())
    assert teardown.returncode == 0, teardown.stdout[-4000:]
    assert groups(site)[look_alike] == "ostest-sg" and rules_of(site, look_alike) == rules


def test_server_with_the_course_metadata_is_left_alone_until_adopted(openstack_site: OpenStackSite, run_playbook: Runner,
                                                                     course_catalogue: Callable[..., list[str]],
                                                                     tmp_path: Path) -> None:
    site = openstack_site
    args = course_catalogue("ostest", course(site, seats=1, egi=False))
    output = tmp_path / "output" / "ostest"
    provisioned = run_playbook("provision.yml", *args, env=site.env())
    assert provisioned.returncode == 0, provisioned.stdout[-4000:]
    (seat,) = course_servers(site, "ostest").values()
    decoy = seed_server(site, "ostest-extra", {"Course": "ostest", "ManagedBy": "scipion_cloud"})

    stopped = run_playbook("lifecycle.yml", *args, "-e", "course_action=stop", env=site.env())
    assert stopped.returncode == 0, stopped.stdout[-4000:]
    assert status_of(site, seat["id"]) == "SHUTOFF" and status_of(site, decoy) == "ACTIVE"
    assert f"{decoy} (ostest-extra)" in one_line(stopped.stdout) and f"-e course_adopt={decoy}" in one_line(stopped.stdout)

    teardown = run_playbook("teardown.yml", *args, "-e", "confirm_teardown=ostest", env=site.env())
    assert teardown.returncode != 0
    assert f"server {decoy} (ostest-extra)" in one_line(teardown.stdout), teardown.stdout[-3000:]
    with site.cloud.lock:
        assert list(site.cloud.servers) == [decoy] and "ostest-key" not in site.cloud.keypairs
    assert "ostest-sg" not in groups(site).values()

    adopted = run_playbook("lifecycle.yml", *args, "-e", "course_action=stop", "-e", f"course_adopt={decoy}", env=site.env())
    assert adopted.returncode == 0, adopted.stdout[-4000:]
    assert status_of(site, decoy) == "SHUTOFF"
    assert decoy in json.loads((output / "resources.json").read_text())["openstack"][PASSWORD_CLOUD]["servers"]
    final = run_playbook("teardown.yml", *args, "-e", "confirm_teardown=ostest", env=site.env())
    assert final.returncode == 0, final.stdout[-4000:]
    with site.cloud.lock:
        assert not site.cloud.servers
