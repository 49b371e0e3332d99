"""The real playbooks against the OpenStack API double (tests/openstack_double).

The double stands in for an EGI FedCloud site, because no OpenStack emulator runs here:
Keystone (password, application credential and the EGI Check-in OIDC exchange), Nova,
Glance, Neutron and a Cinder volume list, with state in memory. It does not model
scheduling or capacity, per-site quota policies beyond instances/cores/RAM/floating IPs,
real GPU flavours (the GPU flavour is a name and extra specs), or time (a transition
such as stop completes by the next read).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import yaml

from image_helpers import builder_container
from openstack_double.site import EGI_CLOUD, PASSWORD_CLOUD, OpenStackSite

PROJECT = Path(__file__).resolve().parents[2]
Runner = Callable[..., subprocess.CompletedProcess[str]]


def course(site: OpenStackSite, seats: int = 2, egi: bool = True, **openstack: Any) -> dict[str, Any]:
    """A course on the double: the EGI token login to IISAS (auth URL and project of the double)."""
    section: dict[str, Any] = {"cloud": EGI_CLOUD, "image": "scipion-1.1-course", "flavor": "g1.c06r12"}
    if egi:
        section.update(site="IISAS-FedCloud-cloud", vo="training.egi.eu", auth_url=site.auth_url,
                       project_id=site.cloud.project_id)
    else:
        section["cloud"] = PASSWORD_CLOUD
    section.update(openstack)
    return {
        "description": "OpenStack double course",
        "provider": "openstack",
        "profile": "scipion-1.1",
        "seats": seats,
        "tags": {"UserName": "i2pc-training"},
        "access": {"ssh_cidrs": ["198.18.0.0/15"], "web_cidrs": ["0.0.0.0/0"]},
        "schedule": {"days": 2, "hours_up_per_day": 8},
        "openstack": section,
    }


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
    assert match, result.stdout[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()), strict=True))


def unsafe_text(value: Any) -> Any:
    """ansible-inventory --list writes values from the cloud as {"__ansible_unsafe": text}."""
    return value.get("__ansible_unsafe", value) if isinstance(value, dict) else value


def course_servers(site: OpenStackSite, name: str) -> dict[str, dict[str, Any]]:
    with site.cloud.lock:
        return {s["name"]: s for s in site.cloud.servers.values() if s["metadata"].get("Course") == name}


def seed_decoy(site: OpenStackSite) -> str:
    """A server of somebody else in the same project, with a floating IP: teardown must not touch it."""
    cloud = site.cloud
    with cloud.lock:
        image = next(i for i in cloud.images.values() if i["name"] == "Ubuntu 24.04")
        flavor = next(f for f in cloud.flavors.values() if f["name"] == "m1.small")
        network = next(n for n in cloud.networks.values() if n["name"] == "training-net")
        public = next(n for n in cloud.networks.values() if n["name"] == "public")
        server = cloud.create_server({"name": "other-course-01", "imageRef": image["id"], "flavorRef": flavor["id"],
                                      "networks": [{"uuid": network["id"]}],
                                      "metadata": {"Course": "other", "ManagedBy": "scipion_cloud"}}, "someone")
        port = next(p for p in cloud.ports.values() if p["device_id"] == server["id"])
        cloud.create_floating_ip({"floating_network_id": public["id"], "port_id": port["id"]})
        return server["id"]


def test_openstack_course_lifecycle(openstack_site: OpenStackSite, run_playbook: Runner,
                                    course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    """provision, re-run, grow, stop/start/reboot/status, inventory, teardown beside a decoy (EGI token login)."""
    site = openstack_site
    decoy = seed_decoy(site)
    env = site.env(EGI_ACCESS_TOKEN="egi-access-token")
    args = course_catalogue("egitest", course(site, seats=2))
    output = tmp_path / "output" / "egitest"

    first = run_playbook("provision.yml", *args, env=env)
    assert first.returncode == 0, first.stdout[-4000:]
    assert "egi-access-token" not in first.stdout
    servers = course_servers(site, "egitest")
    assert sorted(servers) == ["egitest-training-01", "egitest-training-02"]
    credentials = yaml.safe_load((output / "credentials.yml").read_text())
    for number, (name, server) in enumerate(sorted(servers.items()), start=1):
        assert server["metadata"] == {"Course": "egitest", "ManagedBy": "scipion_cloud", "Seat": str(number),
                                      "UserName": "i2pc-training"}
        assert server["status"] == "ACTIVE"
        seat_file = yaml.safe_load(yaml.safe_load(server["_user_data"])["write_files"][0]["content"])
        assert seat_file == {"course": "egitest", "seat": name, **credentials[name]}
        assert [a["OS-EXT-IPS:type"] for a in site.cloud.server_addresses(server["id"])["training-net"]] == [
            "fixed", "floating"]
    with site.cloud.lock:
        group = next(g for g in site.cloud.security_groups.values() if g["name"] == "egitest-sg")
        rules = sorted((r["direction"], r["ethertype"], r["protocol"], r["port_range_min"], r["remote_ip_prefix"] or "")
                       for r in site.cloud.security_group_rules.values() if r["security_group_id"] == group["id"])
        assert all(s["_security_groups"] == [group["id"]] for s in servers.values())
        assert site.cloud.keypairs["egitest-key"]["public_key"] == (output / "egitest-key.pub").read_text().strip()
    assert rules == [("egress", "IPv4", None, None, ""), ("egress", "IPv6", None, None, ""),
                     ("ingress", "IPv4", "tcp", 22, "198.18.0.0/15"), ("ingress", "IPv4", "tcp", 443, "0.0.0.0/0")]
    for private in ("egitest-key", "clouds.yaml", "credentials.yml"):
        assert stat.S_IMODE((output / private).stat().st_mode) == 0o600, private
    clouds = yaml.safe_load((output / "clouds.yaml").read_text())["clouds"][EGI_CLOUD]
    assert clouds["auth_type"] == "v3oidcaccesstoken"
    assert clouds["auth"] == {"auth_url": site.auth_url, "identity_provider": "egi.eu", "protocol": "openid",
                              "access_token": "egi-access-token", "project_id": site.cloud.project_id}
    sheet = (output / "access.csv").read_text()
    floating = sorted(a["addr"] for s in servers.values()
                      for a in site.cloud.server_addresses(s["id"])["training-net"] if a["OS-EXT-IPS:type"] == "floating")
    assert all(f"https://{ip}/vnc.html" in sheet for ip in floating), sheet

    again = run_playbook("provision.yml", *args, env=env)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again)["changed"] == 0, again.stdout[-6000:]

    grown_args = course_catalogue("egitest", course(site, seats=3))
    grown = run_playbook("provision.yml", *grown_args, env=env)
    assert grown.returncode == 0, grown.stdout[-4000:]
    after = course_servers(site, "egitest")
    assert sorted(after) == ["egitest-training-01", "egitest-training-02", "egitest-training-03"]
    assert {n: s["id"] for n, s in after.items() if n in servers} == {n: s["id"] for n, s in servers.items()}

    stopped = run_playbook("lifecycle.yml", *grown_args, "-e", "course_action=stop", env=env)
    assert stopped.returncode == 0, stopped.stdout[-4000:]
    assert {s["status"] for s in course_servers(site, "egitest").values()} == {"SHUTOFF"}
    with site.cloud.lock:
        assert site.cloud.servers[decoy]["status"] == "ACTIVE"

    started = run_playbook("lifecycle.yml", *grown_args, "-e", "course_action=start", env=env)
    assert started.returncode == 0, started.stdout[-4000:]
    assert {s["status"] for s in course_servers(site, "egitest").values()} == {"ACTIVE"}

    rebooted = run_playbook("lifecycle.yml", *grown_args, "-e", "course_action=reboot", env=env)
    assert rebooted.returncode == 0, rebooted.stdout[-4000:]
    for server in course_servers(site, "egitest").values():
        assert server["_actions"][-1] == "reboot" and server["status"] == "ACTIVE"
    with site.cloud.lock:
        assert site.cloud.servers[decoy]["_actions"] == ["create"]

    status = run_playbook("lifecycle.yml", *grown_args, "-e", "course_action=status", env=env)
    assert status.returncode == 0, status.stdout[-4000:]
    assert recap(status)["changed"] == 0
    assert status.stdout.count("running  https://203.0.113.") == 3, status.stdout[-3000:]

    # configure.yml needs no inventory file: the running seats, over SSH as the course's user with
    # the course key, host keys kept with the course. (Read without connecting: the double's
    # floating IPs lead nowhere.)
    report = tmp_path / "seat_hosts.json"
    hosts = run_playbook("tests/provider/playbooks/cloud_seat_hosts.yml", *grown_args, "-e", f"seat_hosts_report={report}", env=env)
    assert hosts.returncode == 0, hosts.stdout[-4000:]
    reached = json.loads(report.read_text())
    assert sorted(reached) == sorted(after)
    for name, server in after.items():
        (floating,) = [a["addr"] for a in site.cloud.server_addresses(server["id"])["training-net"] if a["OS-EXT-IPS:type"] == "floating"]
        assert reached[name] == {
            "ansible_host": floating, "ansible_user": "ubuntu", "ansible_ssh_private_key_file": str(output / "egitest-key"),
            "ansible_ssh_common_args": f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={output}/known_hosts"}

    # And configure.yml runs on those seats with no -i: here each seat is led into a container of
    # its own (extra vars outrank the added hosts' own; localhost stays local), with no image role,
    # so only its checks and the record run.
    with ExitStack() as stack:
        machines = {name: stack.enter_context(builder_container("oscfg")) for name in sorted(after)}
        where = json.dumps(machines)
        configured = run_playbook(
            "configure.yml", *grown_args, "-e", '{"configure_roles": []}', "-e", json.dumps({
                "ansible_connection": "{{ 'i2pc.scipion_cloud.podman' if inventory_hostname != 'localhost' else 'local' }}",
                "ansible_host": f"{{{{ {where}[inventory_hostname] | default('localhost') }}}}",
                # The containers have no ubuntu account (an Ubuntu image would); local connections ignore it.
                "ansible_user": "root"}), env=env)
        assert configured.returncode == 0, configured.stdout[-4000:]
        # scipion-1.1 is a legacy profile: its seats are configured by the legacy runner, whose recap
        # lines the run shows.
        assert "Legacy runner: ansible-playbook [core 2.15." in configured.stdout, configured.stdout[-3000:]
        for name, machine in machines.items():
            # changed=2: the record's folder and the record.
            assert re.search(rf"{name}\s+: ok=\d+\s+changed=2\s+unreachable=0\s+failed=0", configured.stdout), \
                configured.stdout[-3000:]
            record = json.loads(subprocess.run(["podman", "exec", machine, "cat", "/etc/scipion_cloud/configured.json"],
                                               text=True, capture_output=True, check=True).stdout)
            assert record["profile"] == "scipion-1.1" and record["roles"] == []

    inventory = subprocess.run(
        [str(PROJECT / ".venv/bin/ansible-inventory"), "-i", "inventories/fedcloud.openstack.yml", "--list"],
        cwd=PROJECT, text=True, capture_output=True, timeout=120,
        env={**os.environ, "OS_CLIENT_CONFIG_FILE": str(output / "clouds.yaml"), "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")})
    assert inventory.returncode == 0, inventory.stderr
    listing = json.loads(inventory.stdout)
    assert sorted(listing["course_egitest"]["hosts"]) == sorted(after)
    assert listing["course_other"]["hosts"] == ["other-course-01"]
    hostvars = listing["_meta"]["hostvars"]
    assert sorted(unsafe_text(hostvars[n]["ansible_host"]) for n in after) == sorted(
        a["addr"] for s in after.values() for a in site.cloud.server_addresses(s["id"])["training-net"]
        if a["OS-EXT-IPS:type"] == "floating")

    refused = run_playbook("teardown.yml", *grown_args, env=env)
    assert refused.returncode != 0 and "confirm_teardown=egitest" in refused.stdout
    assert len(course_servers(site, "egitest")) == 3

    teardown = run_playbook("teardown.yml", *grown_args, "-e", "confirm_teardown=egitest", env=env)
    assert teardown.returncode == 0, teardown.stdout[-4000:]
    assert "nothing tagged with it is left" in teardown.stdout
    with site.cloud.lock:
        assert list(site.cloud.servers) == [decoy]
        assert [f["port_id"] is not None for f in site.cloud.floating_ips.values()] == [True]
        assert "egitest-key" not in site.cloud.keypairs
        assert sorted(g["name"] for g in site.cloud.security_groups.values()) == ["default"]
        assert site.cloud.servers[decoy]["metadata"] == {"Course": "other", "ManagedBy": "scipion_cloud"}


def cloud_is_empty(site: OpenStackSite) -> bool:
    """Nothing but the seed: no server, floating IP, key pair or extra security group."""
    with site.cloud.lock:
        return (not site.cloud.servers and not site.cloud.floating_ips and not site.cloud.keypairs
                and [g["name"] for g in site.cloud.security_groups.values()] == ["default"])


def test_openstack_quota_refusal_creates_nothing(openstack_site: OpenStackSite, run_playbook: Runner,
                                                 course_catalogue: Callable[..., list[str]]) -> None:
    """Over the project quota, provision refuses before creating anything and says quota, usage and need (password login)."""
    site = openstack_site
    site.cloud.quotas.update(instances=2, cores=24, floatingip=1)
    args = course_catalogue("quotatest", course(site, seats=3, egi=False))
    result = run_playbook("provision.yml", *args, env=site.env())
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert "OpenStack quota: instances: the course needs 3 more (3 seats to create of flavour g1.c06r12), " \
           "the project has 2 free (quota 2, 0 in use)." in text, text[-3000:]
    assert "OpenStack quota: floating IPs: the course needs 3 more" in text and "(quota 1, 0 in use)" in text
    assert "OpenStack quota: cores: the course needs 18 more" in text  # 18 of 24 fit: not a refusal
    assert "[FAIL] OpenStack quota: cores" not in text
    assert "ask the site (on EGI, through the VO manager) for more quota" in text
    assert cloud_is_empty(site)


def test_openstack_egi_token_missing_or_expired(openstack_site: OpenStackSite, run_playbook: Runner,
                                                course_catalogue: Callable[..., list[str]]) -> None:
    """No token, or a token Keystone refuses: fail before any change, say how to get a fresh one, never print it."""
    site = openstack_site
    args = course_catalogue("tokentest", course(site, seats=1))

    missing = run_playbook("provision.yml", *args, env=site.env())
    assert missing.returncode != 0
    text = " ".join(missing.stdout.split())
    assert "No EGI Check-in access token: none of EGI_ACCESS_TOKEN, OS_ACCESS_TOKEN, OIDC_ACCESS_TOKEN is set." in text
    assert "export EGI_ACCESS_TOKEN=$(oidc-token egi)" in text and "EGI Check-in token portal" in text

    expired = run_playbook("provision.yml", *args, env=site.env(OS_ACCESS_TOKEN="egi-expired-token"))
    assert expired.returncode != 0
    text = " ".join(expired.stdout.split())
    assert "EGI site IISAS-FedCloud-cloud" in text and "refused the EGI Check-in access token" in text, text[-3000:]
    assert "it has expired" in text and "oidc-token egi" in text and "(HTTP 401)" in text
    assert "egi-expired-token" not in expired.stdout
    assert cloud_is_empty(site)
