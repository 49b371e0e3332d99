"""Seat secrets: a new password set per edition of a course, none in any playbook output,
none in a captured image.

The local course (one seat, real podman) goes through, in file order: provision (the seat
holds the password of the credentials file; a re-run changes nothing), verify at -vvv,
capture of the seat as the local image (podman save, every layer read), a provision refused
while the seat lives and the credentials file is gone, then teardown and a new edition with
new passwords that the new seat holds. The seat is not configured with the image roles
(that takes minutes): verify meets a seat without a desktop, and the capture a seat whose
TLS key and VNC password file are seeded stand-ins next to its real seat file. An OpenStack
lifecycle (the API double) and an AWS provision (moto) at -vvv print no password either.
Needs podman and the local base image (make setup); CONTAINERS_CONF as the Makefile sets it.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from aws_course_helpers import course_instances, linux_image_id, seat_file_of
from openstack_double.site import EGI_CLOUD, OpenStackSite

BASE_IMAGE = os.environ.get("BASE_IMAGE", "localhost/scipion-cloud/debian12-systemd:latest")
Runner = Callable[..., subprocess.CompletedProcess[str]]
RECAP_RE = re.compile(r"^localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", re.M)
SEAT_FILE = "/etc/scipion_cloud/seat.yml"
NOVNC_KEY = "/etc/scipion_cloud/tls/novnc.key"
VNC_PASSWD = "/home/ubuntu/.vnc/passwd"
# Seeded stand-ins of what the novnc and turbovnc roles make on a seat: their paths are the
# roles' own, their contents markers to look for in the image.
KEY_MARKER = "-----BEGIN PRIVATE KEY----- seat-tls-key-stand-in"
PASSWD_MARKER = "vnc-passwd-stand-in"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=True, timeout=300)


def inspect(name: str) -> dict[str, Any]:
    return json.loads(podman("container", "inspect", name).stdout)[0]


def labelled(course: str) -> list[str]:
    """Names of the containers labelled with the course."""
    found = json.loads(podman("ps", "--all", "--format=json", f"--filter=label=scipion_cloud.course={course}").stdout)
    return [c["Names"][0] for c in found]


def free_port() -> int:
    for _ in range(200):
        port = random.randrange(20000, 60000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def passwords(credentials: dict[str, Any]) -> list[str]:
    """Every password of a credentials file (its edition is no password)."""
    return [p for name, seat in credentials.items() if name != "edition"
            for p in (seat["vnc_password"], seat["vnc_view_password"])]


def leaked(secrets: list[str], outputs: list[str]) -> list[str]:
    return sorted({secret for secret in secrets for output in outputs if secret in output})


def changed(result: subprocess.CompletedProcess[str]) -> int:
    found = RECAP_RE.findall(result.stdout)
    assert found, result.stdout[-3000:]
    return int(found[-1][0])


@dataclass
class SecretsCourse:
    """A one-seat local course in its own catalogue; every output kept, to look for passwords in."""

    name: str
    base_port: int
    root: Path
    runner: Runner | None = None
    outputs: list[str] = field(default_factory=list)
    editions: list[dict[str, dict[str, str]]] = field(default_factory=list)

    @property
    def seat(self) -> str:
        return f"{self.name}-training-01"

    @property
    def output(self) -> Path:
        return self.root / "output" / self.name

    @property
    def image_repository(self) -> str:
        return f"localhost/scipion-cloud/{self.name}-scipion-3"

    def write(self) -> None:
        course = {
            "description": "Seat secrets test course",
            "provider": "local",
            "profile": "scipion-3",
            "seats": 1,
            "disk_gb": 10,
            "access": {"ssh_cidrs": [], "web_cidrs": ["127.0.0.1/32"]},
            "schedule": {"days": 1, "hours_up_per_day": 1},
            "local": {"bind_address": "127.0.0.1", "base_port": self.base_port, "image": BASE_IMAGE},
            # The demo's choices, and no testinfra suite: the seat is not configured.
            "profile_vars": {"gpu": False, "turbovnc_server": "tigervnc", "novnc_source": "distro", "verify_suites": []},
        }
        (self.root / "courses").mkdir(exist_ok=True)
        (self.root / "courses" / f"{self.name}.yml").write_text(yaml.safe_dump(course, sort_keys=False))

    def run(self, playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.runner is not None
        result = self.runner(playbook, "-e", f"course={self.name}", "-e", f"course_catalogue_dir={self.root / 'courses'}",
                             "-e", f"course_output_root={self.root / 'output'}", *args)
        self.outputs.append(result.stdout)
        return result

    def credentials(self) -> dict[str, dict[str, str]]:
        return yaml.safe_load((self.output / "credentials.yml").read_text())

    def seat_file(self) -> dict[str, str]:
        return yaml.safe_load(podman("exec", self.seat, "cat", SEAT_FILE).stdout)

    def all_passwords(self) -> list[str]:
        return [p for edition in self.editions for p in passwords(edition)]


@pytest.fixture(scope="module")
def secrets_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretsCourse]:
    """A unique one-seat local course; a finalizer removes its containers and captured images."""
    assert podman("image", "exists", BASE_IMAGE, check=False).returncode == 0, f"image {BASE_IMAGE} is missing: run make setup"
    name = f"ss{uuid.uuid4().hex[:8]}"
    course = SecretsCourse(name=name, base_port=free_port(), root=tmp_path_factory.mktemp(name))
    course.write()
    try:
        yield course
    finally:
        for container in labelled(name):
            podman("rm", "--force", "--volumes", container, check=False)
        images = podman("images", "--format", "{{.Repository}}:{{.Tag}}", course.image_repository, check=False).stdout.split()
        if images:
            podman("rmi", "--force", *images, check=False)


@pytest.fixture
def secrets_course(secrets_state: SecretsCourse, run_playbook: Runner) -> SecretsCourse:
    secrets_state.runner = run_playbook
    return secrets_state


def test_provision_gives_the_seat_the_password_of_its_credentials_and_a_rerun_changes_nothing(
        secrets_course: SecretsCourse) -> None:
    course = secrets_course
    first = course.run("provision.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    credentials = course.credentials()
    course.editions.append(credentials)
    assert course.seat_file() == {"course": course.name, "seat": course.seat, **credentials[course.seat]}

    again = course.run("provision.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    assert changed(again) == 0, again.stdout[-6000:]
    assert course.credentials() == credentials
    assert not (course.output / "archive").exists()
    assert leaked(course.all_passwords(), course.outputs) == []


def test_verify_at_vvv_prints_no_password_on_a_seat_without_desktop(secrets_course: SecretsCourse) -> None:
    """The browser check gets the password on stdin and fails fast here (no noVNC on the seat)."""
    course = secrets_course
    result = course.run("verify.yml", "-vvv")
    assert result.returncode != 0
    assert f"Seats with failed checks: {course.seat}." in result.stdout, result.stdout[-4000:]
    browser = json.loads((course.output / "verify" / f"{course.seat}-browser.json").read_text())
    assert browser["rendered"] is False and browser["status"].startswith("vnc.html did not load: net::ERR_"), browser
    assert '"module_args": {' in result.stdout  # -vvv prints every module's arguments, but for no_log tasks
    assert leaked(course.all_passwords(), [result.stdout]) == []


def layer_secrets(image: str, secrets: list[str], workdir: Path) -> dict[str, list[str]]:
    """podman save of the image, every layer read: seat files, TLS keys, VNC password files and secret texts found."""
    archive = workdir / "image.tar"
    with archive.open("wb") as handle:
        subprocess.run(["podman", "save", "--format", "docker-archive", image], stdout=handle, check=True, timeout=600)
    needles = [s.encode() for s in secrets]
    found: dict[str, list[str]] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        layers = manifest[0]["Layers"]
        for layer in layers:
            with tarfile.open(fileobj=outer.extractfile(layer), mode="r|*") as inner:
                for member in inner:
                    path = "/" + member.name.lstrip("./")
                    if path in (SEAT_FILE, VNC_PASSWD) or path.startswith(NOVNC_KEY) or "/.vnc/passwd" in path:
                        found.setdefault(layer, []).append(path)
                    if member.isfile():
                        content = inner.extractfile(member).read()
                        held = [f"{path} holds {n.decode()!r}" for n in needles if n in content]
                        if held:
                            found.setdefault(layer, []).extend(held)
    archive.unlink()
    found["layers"] = [str(len(layers))]
    return found


def test_captured_local_image_holds_no_seat_secret_in_any_layer_seeded_stand_in(
        secrets_course: SecretsCourse, tmp_path: Path) -> None:
    course = secrets_course
    podman("exec", course.seat, "sh", "-euc",
           "id ubuntu >/dev/null 2>&1 || useradd --create-home ubuntu; "
           "mkdir -p /etc/scipion_cloud/tls /home/ubuntu/.vnc /var/lib/scipion_cloud; "
           f"printf '%s\\n' '{KEY_MARKER}' > {NOVNC_KEY}; printf '%s\\n' '{PASSWD_MARKER}' > {VNC_PASSWD}; "
           "sha256sum /etc/scipion_cloud/seat.yml > /var/lib/scipion_cloud/vnc-seat.sha256")
    configured = course.run("configure.yml", "-e", '{"configure_roles": []}')
    assert configured.returncode == 0, configured.stdout[-4000:]

    captured = course.run("image.yml", "-e", "provider=local", "-e", "profile=scipion-3", "-e", f"image_name_prefix={course.name}",
                          "-e", f"image_local_seat={course.seat}", "-e", "image_keep=1", "-e", f"image_output_dir={tmp_path}")
    assert captured.returncode == 0, captured.stdout[-4000:]
    image = f"{course.image_repository}:latest"

    found = layer_secrets(image, [*course.all_passwords(), KEY_MARKER, PASSWD_MARKER], tmp_path)
    layers = found.pop("layers")
    assert found == {}, f"seat secrets in the image's layers ({layers[0]} layers): {found}"
    # The seat itself is untouched: it still holds its secrets.
    assert podman("exec", course.seat, "cat", NOVNC_KEY).stdout.strip() == KEY_MARKER
    assert course.seat_file()["vnc_password"] == course.editions[0][course.seat]["vnc_password"]
    assert leaked(course.all_passwords(), course.outputs) == []


def test_live_seat_without_its_credentials_file_is_refused(secrets_course: SecretsCourse, tmp_path: Path) -> None:
    course = secrets_course
    seat_id = inspect(course.seat)["Id"]
    saved = tmp_path / "credentials.yml"
    (course.output / "credentials.yml").rename(saved)
    try:
        refused = course.run("provision.yml")
        assert refused.returncode != 0
        message = " ".join(refused.stdout.split())
        assert (f"Course {course.name} has live seats ({course.seat}) whose passwords are not in "
                f"{course.output}/credentials.yml (the file is missing)") in message, refused.stdout[-3000:]
        assert f"Restore the file from {course.output}/archive/" in message
        assert f"-e confirm_teardown={course.name}) to start a new edition with new passwords." in message
        assert not (course.output / "credentials.yml").exists()
        assert inspect(course.seat)["Id"] == seat_id
    finally:
        saved.rename(course.output / "credentials.yml")


def test_teardown_then_provision_gives_new_passwords_that_the_new_seat_has(secrets_course: SecretsCourse) -> None:
    course = secrets_course
    old = course.credentials()
    old_files = {name: (course.output / name).read_text()
                 for name in ("credentials.yml", "access.csv", "access.html", "instructor.html")}
    down = course.run("teardown.yml", "-e", f"confirm_teardown={course.name}")
    assert down.returncode == 0, down.stdout[-4000:]
    assert labelled(course.name) == []

    again = course.run("provision.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    new = course.credentials()
    course.editions.append(new)
    assert set(passwords(new)).isdisjoint(passwords(old)), "the new edition reuses a password"
    assert course.seat_file() == {"course": course.name, "seat": course.seat, **new[course.seat]}

    (archive,) = (course.output / "archive").iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}Z", archive.name), archive.name
    assert {p.name: p.read_text() for p in archive.iterdir()} == old_files
    assert {oct(p.stat().st_mode & 0o777) for p in archive.iterdir()} == {"0o600"}
    assert oct(archive.stat().st_mode & 0o777) == oct((course.output / "archive").stat().st_mode & 0o777) == "0o700"
    assert new[course.seat]["vnc_password"] in (course.output / "access.csv").read_text()
    assert f"The last edition's credentials and access sheet are in {archive}." in " ".join(again.stdout.split())
    assert leaked(course.all_passwords(), course.outputs) == []


def openstack_course(site: OpenStackSite) -> dict[str, Any]:
    """One seat on the OpenStack double, EGI token login (as tests/provider/test_openstack.py)."""
    return {
        "description": "OpenStack seat secrets",
        "provider": "openstack",
        "profile": "scipion-1.1",
        "seats": 1,
        "access": {"ssh_cidrs": ["198.18.0.0/15"], "web_cidrs": ["0.0.0.0/0"]},
        "schedule": {"days": 1, "hours_up_per_day": 8},
        "openstack": {"cloud": EGI_CLOUD, "image": "scipion-1.1-course", "flavor": "g1.c06r12",
                      "site": "IISAS-FedCloud-cloud", "vo": "training.egi.eu", "auth_url": site.auth_url,
                      "project_id": site.cloud.project_id},
    }


def openstack_seat_file(site: OpenStackSite, course: str) -> dict[str, Any]:
    with site.cloud.lock:
        (server,) = [s for s in site.cloud.servers.values() if s["metadata"].get("Course") == course]
        user_data = server["_user_data"]
    return yaml.safe_load(yaml.safe_load(user_data)["write_files"][0]["content"])


def test_openstack_lifecycle_at_vvv_prints_no_password(openstack_site: OpenStackSite, run_playbook: Runner,
                                                       course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    """provision (user data with the passwords) and status (the sheet rewritten from them), both at -vvv."""
    site = openstack_site
    env = site.env(EGI_ACCESS_TOKEN="egi-access-token")
    args = course_catalogue("ossecret", openstack_course(site))
    outputs = []
    for playbook, extra in (("provision.yml", []), ("lifecycle.yml", ["-e", "course_action=status"])):
        result = run_playbook(playbook, *args, "-vvv", *extra, env=env)
        outputs.append(result.stdout)
        assert result.returncode == 0, result.stdout[-4000:]
    credentials = yaml.safe_load((tmp_path / "output" / "ossecret" / "credentials.yml").read_text())
    assert openstack_seat_file(site, "ossecret") == {"course": "ossecret", "seat": "ossecret-training-01",
                                                    **credentials["ossecret-training-01"]}
    assert '"module_args": {' in outputs[0]  # -vvv: every module's arguments are printed, but for no_log tasks
    assert leaked(passwords(credentials), outputs) == []


def test_aws_provision_at_vvv_prints_no_password(aws_env: dict[str, str], run_playbook: Runner,
                                                 course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    """ec2_course_fleet's user_data is a no_log parameter, and its result holds no user data."""
    course = {
        "description": "AWS seat secrets", "provider": "aws", "profile": "scipion-3", "seats": 1, "disk_gb": 40,
        "access": {"ssh_cidrs": ["198.51.100.0/24"]}, "schedule": {"days": 1, "hours_up_per_day": 8},
        "aws": {"region": "eu-west-1", "instance_type": "g4dn.xlarge", "image_id": linux_image_id()},
    }
    result = run_playbook("provision.yml", *course_catalogue("awssecret", course), "-vvv")
    assert result.returncode == 0, result.stdout[-4000:]
    credentials = yaml.safe_load((tmp_path / "output" / "awssecret" / "credentials.yml").read_text())
    (machine,) = course_instances("awssecret")
    assert seat_file_of(machine["InstanceId"])["vnc_password"] == credentials["awssecret-training-01"]["vnc_password"]
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in result.stdout  # the fleet's invocation, user_data hidden
    assert leaked(passwords(credentials), [result.stdout]) == []
