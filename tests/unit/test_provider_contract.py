"""The provider contract: playbooks read only its names, every provider role has its operations,
and the course's resource names come from one place (module_utils/course_names.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.filter import names, plan  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_names  # noqa: E402

PROVIDERS = ("aws", "openstack", "local")
# A provider role's own variable, or a name built from the course's provider.
PROVIDER_SPECIFIC = re.compile(r"course_(aws|openstack|local)_(?!operator)\w+"
                               r"|'course_' ~ course_spec\.provider|course_\{\{ course_spec\.provider")


def argument_specs(role: str) -> dict:
    return yaml.safe_load((PROJECT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def test_playbooks_read_only_the_contract_names() -> None:
    offending = {path.name: PROVIDER_SPECIFIC.findall(path.read_text())
                 for path in sorted((PROJECT / "playbooks").glob("*.yml")) if PROVIDER_SPECIFIC.search(path.read_text())}
    assert offending == {}


def test_playbooks_and_course_task_files_stay_short() -> None:
    long_playbooks = {p.name: n for p in (PROJECT / "playbooks").glob("*.yml") if (n := len(p.read_text().splitlines())) > 60}
    roles = ("course", *(f"course_{name}" for name in PROVIDERS))
    task_files = [p for role in roles for p in (PROJECT / "roles" / role / "tasks").glob("*.yml")]
    long_tasks = {str(p.relative_to(PROJECT)): n for p in task_files if (n := len(p.read_text().splitlines())) > 150}
    assert (long_playbooks, long_tasks) == ({}, {})


def test_every_provider_role_takes_every_operation_of_the_contract() -> None:
    contract = argument_specs("course")["provider"]["options"]["course_operation"]["choices"]
    assert contract == ["preflight", "create", "start", "stop", "reboot", "status", "destroy", "audit"]
    for provider in PROVIDERS:
        options = argument_specs(f"course_{provider}")["main"]["options"]
        assert options[f"course_{provider}_operation"]["choices"] == contract, provider


def test_every_provider_role_reads_the_contract_operation_by_default() -> None:
    for provider in PROVIDERS:
        defaults = yaml.safe_load((PROJECT / "roles" / f"course_{provider}" / "defaults" / "main.yml").read_text())
        assert defaults[f"course_{provider}_operation"] == "{{ course_operation | default('status') }}", provider


def test_resource_names_come_from_one_place() -> None:
    assert names.course_resource_names("madrid") == {
        "managed_by": "scipion_cloud", "key_pair": "madrid-key", "security_group": "madrid-sg",
        "tags": {"Course": "madrid", "ManagedBy": "scipion_cloud"},
    }
    assert course_names.MANAGED_BY == "scipion_cloud"


def test_the_plan_names_the_resources_as_the_roles_do() -> None:
    course = {"name": "madrid", "provider": "openstack", "profile": "p", "seats": 1, "seat_names": ["madrid-01"],
              "disk_gb": 50, "access": {"ssh_cidrs": [], "web_cidrs": []},
              "openstack": {"cloud": "c", "flavor": "f", "image": "i", "floating_ips": False}}
    lines = plan.course_plan_resources(course)
    assert f"Key pair: {course_names.key_pair_name('madrid')} (new)" in lines
    assert any(line.startswith(f"Security group: {course_names.security_group_name('madrid')} (new)") for line in lines)


def test_every_published_contract_name_is_in_the_course_readme() -> None:
    """provider.yml's names (course_room among them) are what callers read: each has its row in "Published facts"."""
    tasks = yaml.safe_load((PROJECT / "roles/course/tasks/provider.yml").read_text())
    publish = next(t for t in tasks if t["name"] == "Publish the provider's results under the contract's names")
    readme = (PROJECT / "roles/course/README.md").read_text()
    table = readme.split("Published facts", 1)[1].split("\n###", 1)[0]
    documented = set(re.findall(r"^\| `(course_\w+)` \|", table, re.M))
    assert "course_room" in publish["ansible.builtin.set_fact"]
    assert set(publish["ansible.builtin.set_fact"]) - documented == set()
