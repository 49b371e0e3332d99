"""The local provider (role course_local) with real podman: seats are systemd containers.

One course per test run (a unique name and free ports, so parallel runs do not collide)
goes through the whole life of a course, in file order: provision 2 seats and converge
again with nothing changed, the seat list and ports, the seat file, stop/start/reboot/status,
grow to 3, shrink refused then confirmed, teardown. A decoy container (same image, another
course's labels) must survive everything. Finalizers remove whatever a failed test leaves.
Needs podman and the local base image (make setup); CONTAINERS_CONF as the Makefile sets it.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

BASE_IMAGE = os.environ.get("BASE_IMAGE", "localhost/scipion-cloud/debian12-systemd:latest")
SEAT_KEYS = {"seat", "name", "id", "state", "public_ip", "private_ip", "url", "provider"}
SEATS_PLAYBOOK = "tests/provider/playbooks/local_seats.yml"
TASK_LINE = re.compile(r"^TASK \[(?P<task>.*)\] \**$")

Runner = Callable[..., subprocess.CompletedProcess[str]]


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=True, timeout=120)


def inspect(name: str) -> dict[str, Any]:
    return json.loads(podman("container", "inspect", name).stdout)[0]


def labelled(course: str) -> dict[str, dict[str, Any]]:
    """Containers labelled with the course (whoever labelled them), by name."""
    found = json.loads(podman("ps", "--all", "--format=json", f"--filter=label=scipion_cloud.course={course}").stdout)
    return {c["Names"][0]: c for c in found}


def remove_containers(names: list[str]) -> None:
    """One at a time: podman 4.3 removes nothing when one name of a list is missing."""
    for name in names:
        podman("rm", "--force", "--volumes", name, check=False)


def ports_free(base: int, count: int) -> bool:
    for port in range(base, base + count):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_range(count: int) -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000)
        if ports_free(base, count):
            return base
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def changed_tasks(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Names of the tasks (as "role : task" for role tasks) that reported a change in this run."""
    changed: list[str] = []
    task = None
    for line in result.stdout.splitlines():
        match = TASK_LINE.match(line)
        if match:
            task = match.group("task").removeprefix("i2pc.scipion_cloud.")
        elif task and line.startswith("changed:") and task not in changed:
            changed.append(task)
    return changed


def role_changes(result: subprocess.CompletedProcess[str]) -> list[str]:
    """course_local tasks that reported a change in this run."""
    return [t.removeprefix("course_local : ") for t in changed_tasks(result) if t.startswith("course_local : ")]


def shown_states(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Seat name -> state from lifecycle.yml's "Show the seats" lines ("NAME  STATE  URL")."""
    return dict(re.findall(r'^\s+"(\S+)  (\S+)  https://\S+",?$', result.stdout, re.M))


@dataclass
class LocalCourse:
    """A local course in its own catalogue, and the runs of the real playbooks against it."""

    name: str
    base_port: int
    root: Path
    runner: Runner | None
    decoy: str
    outputs: list[str] = field(default_factory=list)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"{self.name}-training"

    def seat_name(self, n: int) -> str:
        return f"{self.prefix}-{n:02d}"

    def write(self, seats: int) -> None:
        course = {
            "description": "Local provider test course",
            "provider": "local",
            "profile": "scipion-3",
            "seats": seats,
            "disk_gb": 10,
            "access": {"ssh_cidrs": [], "web_cidrs": ["127.0.0.1/32"]},
            "schedule": {"days": 1, "hours_up_per_day": 1},
            "local": {"bind_address": "127.0.0.1", "base_port": self.base_port, "image": BASE_IMAGE},
        }
        (self.root / "courses").mkdir(exist_ok=True)
        (self.root / "courses" / f"{self.name}.yml").write_text(yaml.safe_dump(course, sort_keys=False))

    def run(self, playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.runner is not None
        result = self.runner(playbook, "-e", f"course={self.name}", "-e", f"course_catalogue_dir={self.root / 'courses'}",
                             "-e", f"course_output_root={self.root / 'output'}", *args)
        self.outputs.append(result.stdout)
        return result

    def role(self, operation: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the role alone through the test playbook (course loaded, no plan, no access sheet)."""
        report = self.root / f"report-{len(self.outputs)}.json"
        return self.run(SEATS_PLAYBOOK, "-e", f"local_operation={operation}", "-e", f"local_report={report}", *args)

    def seats_report(self, operation: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """The role's run and its JSON report: the published seats and what a later play reached."""
        result = self.role(operation)
        assert result.returncode == 0, result.stdout[-4000:]
        report = self.root / f"report-{len(self.outputs) - 1}.json"
        return result, json.loads(report.read_text())

    def credentials(self) -> dict[str, dict[str, str]]:
        """The seats' passwords (the file also holds the edition)."""
        saved = yaml.safe_load((self.root / "output" / self.name / "credentials.yml").read_text())
        assert re.fullmatch(r"\d{8}T\d{6}Z", saved.pop("edition")), "the credentials file names no edition"
        return saved

    def containers(self) -> dict[str, dict[str, Any]]:
        return labelled(self.name)


@pytest.fixture(scope="module")
def local_course_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCourse]:
    """A unique local course with 3 free ports, a decoy container, and a finalizer that removes everything."""
    assert podman("image", "exists", BASE_IMAGE, check=False).returncode == 0, \
        f"image {BASE_IMAGE} is missing: run make setup"
    name = f"lt{uuid.uuid4().hex[:8]}"
    course = LocalCourse(name=name, base_port=free_port_range(3), root=tmp_path_factory.mktemp(name),
                         runner=None, decoy=f"{name}-decoy")
    try:
        podman("run", "--detach", "--name", course.decoy, "--systemd=always",
               "--label", f"scipion_cloud.course={name}x", "--label", "scipion_cloud.seat=1",
               "--label", "scipion_cloud.managed_by=scipion_cloud", BASE_IMAGE, "/sbin/init")
        yield course
    finally:
        remove_containers([*labelled(name), course.decoy, f"{course.prefix}-03"])
        podman("volume", "rm", "--force", f"{name}-leftover", check=False)


@pytest.fixture
def local_course(local_course_state: LocalCourse, run_playbook: Runner) -> LocalCourse:
    """The module's course, running playbooks through the project's run_playbook fixture."""
    local_course_state.runner = run_playbook
    return local_course_state


def test_create_two_seats_then_converge_without_change(local_course: LocalCourse) -> None:
    local_course.write(seats=2)
    first = local_course.run("provision.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    assert {"Start one container per seat", "Write each seat's credentials file"} <= set(role_changes(first))
    assert sorted(local_course.containers()) == [local_course.seat_name(1), local_course.seat_name(2)]
    ids = {n: c["Id"] for n, c in local_course.containers().items()}

    second, report = local_course.seats_report("create")
    assert changed_tasks(second) == ["Write the seat list and what the inventory reached"]
    assert {n: c["Id"] for n, c in local_course.containers().items()} == ids
    local_course.reports["converged"] = report


def test_seat_list_ports_labels_and_inventory(local_course: LocalCourse) -> None:
    report = local_course.reports["converged"]
    seats = report["seats"]
    assert [s["seat"] for s in seats] == [1, 2]
    for seat in seats:
        n, name = seat["seat"], local_course.seat_name(seat["seat"])
        info = inspect(name)
        port = local_course.base_port + n - 1
        assert set(seat) == SEAT_KEYS
        assert seat["name"] == name and seat["provider"] == "local" and seat["state"] == "running"
        assert seat["id"] == info["Id"]
        assert seat["public_ip"] == seat["private_ip"] == info["NetworkSettings"]["IPAddress"] != ""
        assert seat["url"] == f"https://127.0.0.1:{port}/vnc.html"
        assert info["HostConfig"]["PortBindings"]["443/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert info["Config"]["Labels"] == {"scipion_cloud.course": local_course.name, "scipion_cloud.seat": str(n),
                                            "scipion_cloud.managed_by": "scipion_cloud"}
        assert info["Config"]["Hostname"] == name
        assert info["ImageName"] == BASE_IMAGE
        assert podman("exec", name, "cat", "/proc/1/comm").stdout.strip() == "systemd"
        assert report["inventory"][name]["connection"] == "i2pc.scipion_cloud.podman"
        assert report["inventory"][name]["ansible_host"] == name
        assert report["inventory"][name]["hostname"] == name
    assert sorted(report["inventory"]) == [s["name"] for s in seats]


def test_the_old_inventory_group_is_refused_naming_seat_hosts(local_course: LocalCourse) -> None:
    result = local_course.role("status", "-e", "course_local_inventory_group=course_seats")
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert "course_local_inventory_group is no longer read: the running seats of every provider join the in-memory " \
           f"group course_{local_course.name} through the course role's seat_hosts.yml" in text, text[-3000:]


def test_seat_file_holds_the_seat_credentials(local_course: LocalCourse) -> None:
    credentials = local_course.credentials()
    for n in (1, 2):
        name = local_course.seat_name(n)
        assert podman("exec", name, "stat", "-c", "%a %U %G", "/etc/scipion_cloud/seat.yml").stdout.split() == \
            ["600", "root", "root"]
        seat_file = yaml.safe_load(podman("exec", name, "cat", "/etc/scipion_cloud/seat.yml").stdout)
        assert seat_file == {"course": local_course.name, "seat": name, **credentials[name]}
        assert len(seat_file["vnc_password"]) == 8 and seat_file["vnc_password"] != seat_file["vnc_view_password"]
    passwords = [p for c in credentials.values() for p in c.values()]
    leaked = [p for p in passwords for out in local_course.outputs if p in out]
    assert leaked == [], "a VNC password appeared in a playbook's output"


def test_stop_start_reboot_status(local_course: LocalCourse) -> None:
    names = [local_course.seat_name(1), local_course.seat_name(2)]
    stop, report = local_course.seats_report("stop")
    assert [(s["state"], s["public_ip"], s["private_ip"]) for s in report["seats"]] == [("stopped", None, None)] * 2
    assert report["inventory"] == {}
    assert {inspect(n)["State"]["Status"] for n in names} == {"exited"}
    assert "Stop the course's running seats" in role_changes(stop)

    start = local_course.run("lifecycle.yml", "-e", "course_action=start")
    assert start.returncode == 0, start.stdout[-4000:]
    assert shown_states(start) == {n: "running" for n in names}
    for name in names:
        assert podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip() in ("running", "degraded")
    started = {n: inspect(n)["State"]["StartedAt"] for n in names}

    reboot = local_course.run("lifecycle.yml", "-e", "course_action=reboot")
    assert reboot.returncode == 0, reboot.stdout[-4000:]
    assert shown_states(reboot) == {n: "running" for n in names}
    for name in names:
        assert inspect(name)["State"]["StartedAt"] != started[name], f"{name} was not restarted"
        assert podman("exec", name, "test", "-s", "/etc/scipion_cloud/seat.yml", check=False).returncode == 0

    status = local_course.run("lifecycle.yml", "-e", "course_action=status")
    assert status.returncode == 0, status.stdout[-4000:]
    assert shown_states(status) == {n: "running" for n in names}
    assert role_changes(status) == []


def test_grow_to_three_seats(local_course: LocalCourse) -> None:
    before = {n: c["Id"] for n, c in local_course.containers().items()}
    third = local_course.seat_name(3)
    local_course.write(seats=3)
    podman("create", "--name", third, BASE_IMAGE, "/sbin/init")
    foreign_id = inspect(third)["Id"]
    refused = local_course.role("create")
    assert refused.returncode != 0
    assert f"Container(s) {third} already exist and are not seats of course {local_course.name}" in refused.stdout
    assert inspect(third)["Id"] == foreign_id and inspect(third)["Config"]["Labels"] in (None, {})
    assert sorted(local_course.containers()) == sorted(before)
    podman("rm", third)

    grow = local_course.run("provision.yml")
    assert grow.returncode == 0, grow.stdout[-4000:]
    after = local_course.containers()
    assert sorted(after) == [local_course.seat_name(n) for n in (1, 2, 3)]
    assert {n: after[n]["Id"] for n in before} == before, "existing seats were recreated"
    added = inspect(third)
    assert added["HostConfig"]["PortBindings"]["443/tcp"][0]["HostPort"] == str(local_course.base_port + 2)
    assert added["Config"]["Labels"]["scipion_cloud.seat"] == "3"
    assert podman("exec", third, "stat", "-c", "%a", "/etc/scipion_cloud/seat.yml").stdout.strip() == "600"


def test_shrink_is_refused_then_done_when_confirmed(local_course: LocalCourse) -> None:
    local_course.write(seats=2)
    third = local_course.seat_name(3)
    refused = local_course.role("create")
    assert refused.returncode != 0
    assert third in refused.stdout and "course_local_allow_shrink=true" in refused.stdout
    assert third in local_course.containers(), "a refused shrink removed a seat"

    confirmed = local_course.run("provision.yml", "-e", "course_local_allow_shrink=true")
    assert confirmed.returncode == 0, confirmed.stdout[-4000:]
    assert sorted(local_course.containers()) == [local_course.seat_name(1), local_course.seat_name(2)]


def test_teardown_removes_only_the_course_and_reports_leftovers(local_course: LocalCourse) -> None:
    decoy_id = inspect(local_course.decoy)["Id"]
    leftover = f"{local_course.name}-leftover"
    podman("volume", "create", "--label", f"scipion_cloud.course={local_course.name}", leftover)

    audited = local_course.run("teardown.yml", "-e", f"confirm_teardown={local_course.name}")
    assert audited.returncode != 0, "a volume labelled with the course was not reported"
    assert f"volume {leftover}" in audited.stdout
    assert local_course.containers() == {}

    podman("volume", "rm", leftover)
    clean = local_course.run("teardown.yml", "-e", f"confirm_teardown={local_course.name}")
    assert clean.returncode == 0, clean.stdout[-4000:]
    assert f"Course {local_course.name} is torn down: nothing tagged with it is left." in clean.stdout
    assert role_changes(clean) == []

    decoy = inspect(local_course.decoy)
    assert decoy["Id"] == decoy_id and decoy["State"]["Status"] == "running"
