"""scripts/check-target-python.py: machine-side Python must run on Ubuntu 16.04's Python 3.5."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SCRIPT = PROJECT / "scripts/check-target-python.py"
MACHINE_SIDE = {"plugins/modules/dataset_manifest.py", "roles/desktop/files/idle_stop.py",
                "roles/turbovnc/files/vnc_seat_apply.py"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False,
                          timeout=120)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("source", "line", "checkers"),
    [
        ('import os\nname = os.sep\nprint(f"sep is {name}")\n', 3, {"[vermin] f-strings", "[ast] "}),
        ("import os\ncount: int = 3\nprint(count)\n", 2, {"[vermin] variable annotations", "[ast] "}),
        # A `# novm` comment does not silence vermin here.
        ('name = "x"\nprint(f"{name}")  # novm\n', 2, {"[vermin] f-strings", "[ast] "}),
        # Library calls of 3.6+ are vermin's side of the check.
        ('import subprocess\nsubprocess.run(["true"], capture_output=True)\n', 2, {"[vermin] 'subprocess.run(capture_output)'"}),
    ],
    ids=["f-string", "variable-annotation", "novm-comment", "capture_output"],
)
def test_a_file_that_needs_python_3_6_fails_naming_file_and_line(tmp_path, source, line, checkers):
    script = write(tmp_path / "tool.py", source)
    result = run(str(script))
    assert result.returncode == 1, result.stdout + result.stderr
    flagged = [text for text in result.stdout.splitlines() if text.startswith("{0}:{1}: ".format(script, line))]
    for checker in checkers:
        assert any(checker in text for text in flagged), (checker, result.stdout)
    assert "need at most Python 3.5" not in result.stdout


def test_python_3_5_code_passes(tmp_path):
    script = write(tmp_path / "tool.py", 'import subprocess\nprint("{0}".format(subprocess.run(["true"]).returncode))\n')
    result = run(str(script))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "1 machine-side Python files need at most Python 3.5"


def test_the_derived_list_holds_the_role_scripts_and_the_modules_machines_run():
    result = run("--list")
    assert result.returncode == 0, result.stderr
    listed = set(result.stdout.split())
    assert listed >= MACHINE_SIDE
    # Controller-side modules (provider plays on localhost) are not machine-side.
    assert "plugins/modules/ec2_course_fleet.py" not in listed
    assert "plugins/modules/openstack_quota_info.py" not in listed


def test_the_tree_needs_at_most_python_3_5():
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(run("--list").stdout.split())
    assert result.stdout.strip() == "{0} machine-side Python files need at most Python 3.5".format(count)


@pytest.fixture
def small_tree(tmp_path):
    """A collection with one machine play, one controller play and their roles and modules."""
    write(tmp_path / "playbooks/machines.yml",
          "- name: Machines\n  hosts: \"{{ seats | default('course') }}\"\n  tasks:\n"
          "    - name: Role\n      ansible.builtin.include_role:\n        name: i2pc.scipion_cloud.seat\n")
    write(tmp_path / "playbooks/controller.yml",
          "- name: Controller\n  hosts: localhost\n  tasks:\n"
          "    - name: Cloud\n      i2pc.scipion_cloud.cloud_only: {}\n")
    write(tmp_path / "roles/seat/tasks/main.yml",
          "- name: More tasks\n  ansible.builtin.include_tasks: more.yml\n"
          "- name: On the controller\n  i2pc.scipion_cloud.delegated_only: {}\n  delegate_to: localhost\n")
    write(tmp_path / "roles/seat/tasks/more.yml", "- name: Check\n  i2pc.scipion_cloud.on_seat: {}\n")
    write(tmp_path / "roles/seat/files/helper", "#!/usr/bin/python3\nprint('helper')\n")
    write(tmp_path / "roles/seat/templates/tool.py.j2", "print('tool')\n")
    write(tmp_path / "roles/seat/templates/motd.j2", "Welcome\n")
    write(tmp_path / "plugins/modules/on_seat.py",
          "from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.shared import x\n")
    write(tmp_path / "plugins/module_utils/shared.py", "x = 1\n")
    write(tmp_path / "plugins/module_utils/unused.py", "x = 1\n")
    for name in ("cloud_only", "delegated_only"):
        write(tmp_path / "plugins/modules/{0}.py".format(name), "x: int = 1\n")
    return tmp_path


def test_the_list_follows_machine_plays_roles_task_files_and_module_utils(small_tree):
    result = run("--root", str(small_tree), "--list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plugins/module_utils/shared.py", "plugins/modules/on_seat.py",
                                     "roles/seat/files/helper", "roles/seat/templates/tool.py.j2"]


def test_a_machine_side_module_utils_needing_python_3_6_fails_the_tree(small_tree):
    write(small_tree / "plugins/module_utils/shared.py", 'x = f"{1}"\n')
    result = run("--root", str(small_tree))
    assert result.returncode == 1
    assert "plugins/module_utils/shared.py:1: [vermin] f-strings: Python 3.6" in result.stdout.splitlines()


def test_a_python_template_with_jinja_markup_is_refused(small_tree):
    write(small_tree / "roles/seat/templates/tool.py.j2", "PORT = {{ seat_port }}\n")
    result = run("--root", str(small_tree))
    assert result.returncode == 1
    assert "roles/seat/templates/tool.py.j2:1: [template] Jinja markup" in result.stdout


def test_a_machine_play_naming_a_missing_role_cannot_be_derived(small_tree):
    write(small_tree / "roles/seat/tasks/more.yml",
          "- name: Gone\n  ansible.builtin.include_role:\n    name: i2pc.scipion_cloud.gone\n")
    result = run("--root", str(small_tree), "--list")
    assert result.returncode == 2
    assert "role 'i2pc.scipion_cloud.gone' is not under roles/" in result.stderr
