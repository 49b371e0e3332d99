#!/usr/bin/env python3
"""Check that every piece of our Python that runs on a course machine needs at most Python 3.5.

    check-target-python.py            check the machine-side files derived from the tree
    check-target-python.py --list     print that list, one path a line, and check nothing
    check-target-python.py FILE...    check the given files instead

Ubuntu 16.04's system Python is 3.5, and ansible-core 2.15 configures such machines with it,
so the Python of ours that runs there must parse and run on 3.5. Which files those are is
derived, never kept by hand:

- every Python file under roles/*/files and roles/*/templates (named *.py or *.py.j2, or
  with a python shebang): the roles install them on the machines;
- the collection's modules that the machines run: those named in the tasks and handlers
  of the roles that playbooks/ plays on machines (any play whose hosts is not localhost
  and whose connection is not local) include, role by role and task file by task file,
  except tasks delegated to localhost; plus the module_utils those modules import.

Each file gets two independent checks: vermin (--target=3.5-, no backports, no config file,
no `# novm` comments, annotations evaluated as Python 3.5 does) and Python's own parser
(ast.parse with feature_version=(3, 5), plus a walk of the tree for the 3.6+ syntax that
newer parsers no longer refuse under feature_version, such as f-strings). Every violation
is printed as path:line: message; the exit status is 1 when there is any, 2 when the
list cannot be derived.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parent.parent
TARGET = (3, 5)
TARGET_TEXT = "{0}.{1}".format(*TARGET)
COLLECTION = "i2pc.scipion_cloud"
CONTROLLER_HOSTS = {"localhost", "127.0.0.1", "::1"}
PYTHON_SHEBANG = re.compile(r"#!.*\bpython")
JINJA_MARKUP = re.compile(r"\{\{|\{%|\{#")
TEMPLATED = re.compile(r"\{\{.*?\}\}")
# __future__ features a Python 3.5 compiler knows; any other one is a SyntaxError there.
FUTURE_FEATURES_35 = {"nested_scopes", "generators", "division", "absolute_import", "with_statement",
                      "print_function", "unicode_literals", "barry_as_FLUFL", "generator_stop"}
VERMIN_FLAGS = [
    "--target={0}-".format(TARGET_TEXT), "--no-tips", "--violations",
    "--no-config-file",      # no setup.cfg or vermin.ini can add backports or exclusions
    "--no-backport", "--no-exclude", "--no-exclude-regex",
    "--no-parse-comments",   # a `# novm` comment cannot hide a line
    "--eval-annotations",    # Python 3.5 evaluates annotations (no `from __future__ import annotations`)
    "--pessimistic",         # a file vermin cannot parse is a violation, not a pass
    "--format", "parsable",
]
TASK_LISTS = ("pre_tasks", "tasks", "post_tasks", "handlers")
BLOCK_LISTS = ("block", "rescue", "always")


class DerivationError(Exception):
    """The list of machine-side files cannot be derived from the tree."""


# ---------------------------------------------------------------------------------------------
# Which files run on the machines


def _action_key(task: dict[str, Any], short: str) -> str | None:
    for key in (short, "ansible.builtin." + short, "ansible.legacy." + short):
        if key in task:
            return key
    return None


def _delegated_to_controller(task: dict[str, Any], inherited: bool) -> bool:
    if "local_action" in task or task.get("connection") == "local":
        return True
    if "delegate_to" in task:
        return str(task["delegate_to"]).strip() in CONTROLLER_HOSTS
    return inherited


class TargetModules:
    """Walks the machine plays, their roles and task files, collecting the modules they run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.roles_dir = root / "roles"
        self.modules_dir = root / "plugins" / "modules"
        self.modules: dict[str, set[str]] = {}   # module name -> where it is used
        self.roles: set[str] = set()
        self._seen_files: set[tuple[Path, bool]] = set()

    # -- names

    def _role_dirs(self, name: str) -> list[Path]:
        """Our roles a role reference names (a templated name matches as a glob)."""
        name = name.strip()
        if name.startswith(COLLECTION + "."):
            name = name[len(COLLECTION) + 1:]
        elif "." in TEMPLATED.sub("", name):
            return []  # another collection's role
        pattern = TEMPLATED.sub("*", name)
        return sorted(path for path in self.roles_dir.iterdir()
                      if path.is_dir() and fnmatch.fnmatchcase(path.name, pattern))

    def _module_name(self, key: str) -> str | None:
        if key.startswith(COLLECTION + "."):
            name = key[len(COLLECTION) + 1:]
            if (self.modules_dir / (name + ".py")).is_file():
                return name
        return None

    # -- plays, roles, task files

    def add_playbook(self, path: Path) -> None:
        plays = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for play in plays:
            if not isinstance(play, dict) or "hosts" not in play:
                continue
            hosts = str(play["hosts"]).strip()
            if hosts in CONTROLLER_HOSTS or play.get("connection") == "local":
                continue
            for entry in play.get("roles") or []:
                name = entry if isinstance(entry, str) else entry.get("role") or entry.get("name", "")
                self.add_role(name, None, False, path)
            for section in TASK_LISTS:
                self._walk_tasks(play.get(section) or [], path, path.parent, False)

    def add_role(self, name: str, tasks_from: str | None, delegated: bool, where: Path) -> None:
        dirs = self._role_dirs(name)
        if not dirs and (name.startswith(COLLECTION + ".") or "." not in name):
            raise DerivationError("{0}: role {1!r} is not under roles/".format(self._rel(where), name))
        for role_dir in dirs:
            self.roles.add(role_dir.name)
            tasks_dir = role_dir / "tasks"
            self._add_task_file(tasks_dir, tasks_from or "main.yml", delegated, where)
            for handlers in sorted((role_dir / "handlers").glob("*.yml")):
                self._walk_file(handlers, tasks_dir, delegated)
            meta = role_dir / "meta" / "main.yml"
            if meta.is_file():
                for dependency in (yaml.safe_load(meta.read_text(encoding="utf-8")) or {}).get("dependencies") or []:
                    dep = dependency if isinstance(dependency, str) else dependency.get("role") or dependency.get("name", "")
                    self.add_role(dep, None, delegated, meta)

    def _add_task_file(self, tasks_dir: Path, name: str, delegated: bool, where: Path) -> None:
        name = name.strip()
        if TEMPLATED.search(name):  # a computed file name: every task file it may be
            candidates = sorted(path for path in tasks_dir.glob("*.yml")
                                if fnmatch.fnmatchcase(path.name, TEMPLATED.sub("*", name)))
        else:
            candidates = [path for path in (tasks_dir / name, tasks_dir / (name + ".yml")) if path.is_file()][:1]
        if not candidates:
            raise DerivationError("{0}: task file {1!r} not found in {2}".format(
                self._rel(where), name, self._rel(tasks_dir)))
        for path in candidates:
            self._walk_file(path, tasks_dir, delegated)

    def _walk_file(self, path: Path, tasks_dir: Path, delegated: bool) -> None:
        if (path, delegated) in self._seen_files:
            return
        self._seen_files.add((path, delegated))
        tasks = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        self._walk_tasks(tasks, path, tasks_dir, delegated)

    def _walk_tasks(self, tasks: Iterable[Any], where: Path, tasks_dir: Path, delegated: bool) -> None:
        for task in tasks:
            if isinstance(task, dict):
                self._walk_task(task, where, tasks_dir, delegated)

    def _walk_task(self, task: dict[str, Any], where: Path, tasks_dir: Path, inherited: bool) -> None:
        # Blocks and static imports take the task's delegation; a dynamic include only its `apply`.
        delegated = _delegated_to_controller(task, inherited)
        for section in BLOCK_LISTS:
            self._walk_tasks(task.get(section) or [], where, tasks_dir, delegated)
        for short in ("include_role", "import_role"):
            key = _action_key(task, short)
            if key:
                spec = task[key] or {}
                into = _delegated_to_controller(spec.get("apply") or {}, inherited) if short.startswith("include") else delegated
                self.add_role(spec.get("name", ""), spec.get("tasks_from"), into, where)
        for short in ("include_tasks", "import_tasks"):
            key = _action_key(task, short)
            if key:
                spec = task[key]
                name = spec.get("file", "") if isinstance(spec, dict) else str(spec)
                apply = (spec.get("apply") or {}) if isinstance(spec, dict) else {}
                into = _delegated_to_controller(apply, inherited) if short.startswith("include") else delegated
                self._add_task_file(tasks_dir, name, into, where)
        if delegated:
            return  # its module runs on the controller
        keys = list(task)
        action = task.get("action")
        if isinstance(action, dict):
            keys.append(str(action.get("module", "")))
        elif isinstance(action, str) and action.split():
            keys.append(action.split()[0])
        for key in keys:
            module = self._module_name(str(key))
            if module:
                self.modules.setdefault(module, set()).add(self._rel(where))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def _module_utils_imports(path: Path, utils_dir: Path) -> set[Path]:
    """The collection's module_utils files a module or module_utils file imports."""
    prefix = "ansible_collections.{0}.plugins.module_utils".format(COLLECTION)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level and node.module and node.module.split(".")[0] == "module_utils":
                base = node.module.split(".")[1:]
            elif node.level == 0 and node.module and (node.module + ".").startswith(prefix + "."):
                base = node.module[len(prefix):].strip(".").split(".") if node.module != prefix else []
            else:
                continue
            base = [part for part in base if part]
            names = [".".join(base)] if base else []
            names += [".".join(base + [alias.name]) for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name[len(prefix) + 1:] for alias in node.names if alias.name.startswith(prefix + ".")]
        for name in names:
            parts = name.split(".")
            for candidate in (utils_dir.joinpath(*parts).with_suffix(".py"), utils_dir.joinpath(*parts) / "__init__.py"):
                if candidate.is_file():
                    found.add(candidate)
    return found


def role_python_files(root: Path) -> list[Path]:
    """Python files the roles install: *.py, *.py.j2, or a python shebang."""
    found = []
    for kind in ("files", "templates"):
        for path in sorted(root.glob("roles/*/{0}/**/*".format(kind))):
            if not path.is_file():
                continue
            if path.name.endswith((".py", ".py.j2")):
                found.append(path)
                continue
            try:
                with path.open(encoding="utf-8") as handle:
                    first = handle.readline()
            except (UnicodeDecodeError, OSError):
                continue
            if PYTHON_SHEBANG.match(first):
                found.append(path)
    return found


def target_modules(root: Path) -> TargetModules:
    walker = TargetModules(root)
    for playbook in sorted((root / "playbooks").glob("*.yml")):
        walker.add_playbook(playbook)
    return walker


def machine_side_files(root: Path) -> list[Path]:
    """Every Python file of the tree that runs on the course machines."""
    files = set(role_python_files(root))
    utils_dir = root / "plugins" / "module_utils"
    pending = [root / "plugins" / "modules" / (name + ".py") for name in target_modules(root).modules]
    while pending:
        path = pending.pop()
        if path in files:
            continue
        files.add(path)
        pending.extend(_module_utils_imports(path, utils_dir))
    return sorted(files)


# ---------------------------------------------------------------------------------------------
# The checks

SYNTAX_36 = (
    (ast.JoinedStr, "f-strings require Python 3.6"),
    (ast.AnnAssign, "variable annotations require Python 3.6"),
    (getattr(ast, "NamedExpr", ()), "assignment expressions (:=) require Python 3.8"),
    (getattr(ast, "Match", ()), "match statements require Python 3.10"),
    (getattr(ast, "TryStar", ()), "except* requires Python 3.11"),
)


def ast_violations(path: Path, source: str) -> list[tuple[int, str]]:
    """Python's own parser at feature_version 3.5, plus what newer parsers let through."""
    found = set()
    try:
        ast.parse(source, str(path), feature_version=TARGET)
    except SyntaxError as error:
        found.add((error.lineno or 0, "does not parse as Python {0}: {1}".format(TARGET_TEXT, error.msg)))
    try:
        tree = ast.parse(source, str(path))
    except SyntaxError:
        return sorted(found)
    refused = {line for line, _ in found}
    for node in ast.walk(tree):
        for kind, message in SYNTAX_36:
            if kind and isinstance(node, kind):
                found.add((node.lineno, message))
        if isinstance(node, ast.comprehension) and node.is_async:
            found.add((getattr(node.target, "lineno", 0), "async comprehensions require Python 3.6"))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and getattr(node.args, "posonlyargs", []):
            found.add((node.lineno, "positional-only parameters require Python 3.8"))
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                if alias.name not in FUTURE_FEATURES_35:
                    found.add((node.lineno, "`from __future__ import {0}` is a SyntaxError before Python 3.7"
                               .format(alias.name) if alias.name == "annotations" else
                               "`from __future__ import {0}` is unknown to Python {1}".format(alias.name, TARGET_TEXT)))
    # A line the parser refused already is reported once.
    return sorted(item for item in found if item[0] not in refused or item[1].startswith("does not parse"))


def _vermin_command() -> list[str]:
    beside = Path(sys.executable).parent / "vermin"
    vermin = str(beside) if beside.is_file() else shutil.which("vermin")
    if not vermin:
        raise DerivationError("vermin is not installed: make setup installs it (requirements-test.txt)")
    return [vermin]


def vermin_violations(paths: list[Path]) -> dict[Path, list[tuple[int, str]]]:
    """vermin's violations per file, from its parsable output (path:line:col:py2:py3:feature)."""
    for path in paths:
        if ":" in str(path):
            raise DerivationError("{0}: vermin's parsable output cannot name a path with ':'".format(path))
    result = subprocess.run(_vermin_command() + VERMIN_FLAGS + [str(p) for p in paths],
                            capture_output=True, text=True, check=False)
    by_path = {str(path): path for path in paths}
    found: dict[Path, list[tuple[int, str]]] = {}
    for line in result.stdout.splitlines():
        fields = line.split(":", 5)
        if len(fields) != 6 or fields[0] not in by_path or not fields[1]:
            continue  # a file's or the run's summary line
        _, lineno, _, _, py3, feature = fields
        feature = feature.strip()
        if feature.startswith("info:"):
            feature = feature[len("info:"):].strip()
        needs = "Python {0}".format(py3) if py3 and not py3.startswith("!") else "not Python 3"
        message = "{0}: {1}".format(feature, needs)
        found.setdefault(by_path[fields[0]], []).append((int(lineno), message))
    if result.returncode != 0 and not found:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise DerivationError("vermin failed (exit {0}) without naming a violation: {1}".format(
            result.returncode, detail[-1] if detail else "no output"))
    return found


def check(paths: list[Path]) -> list[str]:
    """Every violation, as `path:line: [checker] message`."""
    problems: list[tuple[str, int, str]] = []
    checkable = []
    for path in paths:
        source = path.read_text(encoding="utf-8")
        if path.name.endswith(".j2") and JINJA_MARKUP.search(source):
            problems.append((str(path), 1, "[template] Jinja markup in a Python template cannot be checked: keep "
                             "machine-side Python in the role's files/ and pass settings as arguments or a config file"))
            continue
        checkable.append(path)
        problems += [(str(path), line, "[ast] " + message) for line, message in ast_violations(path, source)]
    if checkable:
        for path, found in vermin_violations(checkable).items():
            problems += [(str(path), line, "[vermin] " + message) for line, message in found]
    return ["{0}:{1}: {2}".format(*problem) for problem in sorted(problems)]


def _shown(text: str, root: Path) -> str:
    """A path or message with the tree's own paths relative to its root."""
    prefix = str(root) + "/"
    return text[len(prefix):] if text.startswith(prefix) else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="check these files instead of the derived list")
    parser.add_argument("--root", type=Path, default=PROJECT, help="the collection's root (default: this tree)")
    parser.add_argument("--list", action="store_true", help="print the derived list of files and check nothing")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        files = [path.resolve() for path in args.files] if args.files else machine_side_files(root)
        if args.list:
            for path in files:
                print(_shown(str(path), root))
            return 0
        if not files:
            print("check-target-python: no machine-side Python file found under {0}: is --root the collection?"
                  .format(root), file=sys.stderr)
            return 2
        problems = check(files)
    except DerivationError as error:
        print("check-target-python: {0}".format(error), file=sys.stderr)
        return 2
    for problem in problems:
        print(_shown(problem, root))
    if problems:
        print("{0} violation(s): machine-side Python must run on Python {1} (Ubuntu 16.04's system Python): "
              "use str.format, type comments, and no 3.6+ library calls".format(len(problems), TARGET_TEXT))
        return 1
    print("{0} machine-side Python files need at most Python {1}".format(len(files), TARGET_TEXT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
