"""Plan the CUDA toolkits the cuda role installs, and read an installed toolkit's release.

``cuda_toolkit_plan`` turns the ``cuda_toolkits`` entries of a profile into one dict per
toolkit with everything the role's tasks need: the folder, the full release, which
version file shows it, whether the runfile needs the Perl >= 5.26 workaround (CUDA <= 8
installers load InstallUtils.pm from the current folder, which newer Perl no longer
searches), and the installer's arguments. ``cuda_release_from_version_file`` reads the
release from ``version.txt`` (``CUDA Version 7.5.18``) or ``version.json`` (11.1 and later).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from ansible.errors import AnsibleFilterError

VERSION_RE = re.compile(r"^\d+\.\d+$")
RELEASE_RE = re.compile(r"^\d+\.\d+(\.\d+)*$")
RUNFILE_RELEASE_RE = re.compile(r"^cuda_(\d+\.\d+(?:\.\d+)*)_")
VERSION_TXT_RE = re.compile(r"CUDA Version (\S+)")
# Releases from which the runfile behaves differently.
FIXED_PERL = (9, 0)  # CUDA 9 installers no longer need InstallUtils.pm from the current folder
NEW_INSTALLER = (10, 1)  # 10.1+: binary installer; --verbose gone; stale /tmp/cuda-installer.log crashes it
VERSION_JSON = (11, 1)  # 11.1+: version.json replaces version.txt


def _numbers(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def _release(toolkit: dict[str, Any], runfile: dict[str, Any]) -> str:
    if toolkit.get("release"):
        return str(toolkit["release"])
    match = RUNFILE_RELEASE_RE.match(str(runfile.get("name", "")))
    if match:
        return match.group(1)
    return ""


def _problems(toolkit: dict[str, Any], index: int) -> list[str]:
    where = f"cuda_toolkits[{index}]"
    version = str(toolkit.get("version", ""))
    method = toolkit.get("method") or "runfile"
    problems = []
    if not VERSION_RE.match(version):
        problems.append(f"{where}.version must be major.minor like 7.5 or 12.4 (got '{version}').")
    if method not in ("runfile", "package"):
        problems.append(f"{where}.method must be runfile or package (got '{method}').")
    if method == "runfile":
        runfile = toolkit.get("runfile") or {}
        if not runfile.get("name") or not runfile.get("sha256"):
            problems.append(f"{where} ({version}) needs runfile: {{name, url, sha256}} for the runfile method.")
        release = _release(toolkit, runfile)
        if not RELEASE_RE.match(release):
            problems.append(
                f"{where} ({version}): set release (like 7.5.18): it cannot be read from the runfile name "
                f"'{runfile.get('name', '')}'."
            )
        elif VERSION_RE.match(version) and not (release == version or release.startswith(version + ".")):
            problems.append(f"{where}: release {release} is not a CUDA {version} release.")
    if method == "package" and not toolkit.get("packages"):
        problems.append(f"{where} ({version}) needs packages for the package method (like [cuda-toolkit-12-4]).")
    return problems


def _runfile_plan(toolkit: dict[str, Any], folder: str, work: str) -> dict[str, Any]:
    runfile = dict(toolkit["runfile"])
    release = _release(toolkit, runfile)
    numbers = _numbers(release)
    args = ["--silent", "--toolkit", f"--toolkitpath={folder}", "--override"]
    if numbers < NEW_INSTALLER:
        args.append("--verbose")
    args.append(f"--tmpdir={work}/tmp")
    args.extend(str(arg) for arg in toolkit.get("installer_args") or [])
    return {
        "runfile": runfile,
        "release": release,
        "version_file": "version.json" if numbers >= VERSION_JSON else "version.txt",
        "perl_workaround": numbers < FIXED_PERL,
        "new_installer": numbers >= NEW_INSTALLER,
        "installer_args": args,
    }


def cuda_toolkit_plan(toolkits: list[dict[str, Any]], install_root: str, work_dir: str,
                      default_version: str = "") -> list[dict[str, Any]]:
    """One dict per toolkit: version, method, dir, work, and for runfiles the install plan."""
    if not isinstance(toolkits, list):
        raise AnsibleFilterError(f"cuda_toolkits must be a list (got {type(toolkits).__name__}).")
    problems = [problem for index, toolkit in enumerate(toolkits) for problem in _problems(toolkit, index)]
    versions = [str(toolkit.get("version", "")) for toolkit in toolkits]
    duplicates = sorted({version for version in versions if versions.count(version) > 1})
    if duplicates:
        problems.append(f"cuda_toolkits lists CUDA {', '.join(duplicates)} more than once.")
    if default_version and str(default_version) not in versions:
        problems.append(
            f"cuda_default_version {default_version} is not one of cuda_toolkits ({', '.join(versions) or 'none'})."
        )
    if problems:
        raise AnsibleFilterError(" ".join(problems))
    root = install_root.rstrip("/")
    plan = []
    for toolkit in toolkits:
        version = str(toolkit["version"])
        entry: dict[str, Any] = {
            "version": version,
            "method": toolkit.get("method") or "runfile",
            "dir": f"{root}/cuda-{version}",
            "work": work_dir.rstrip("/"),
            "packages": list(toolkit.get("packages") or []),
        }
        if entry["method"] == "runfile":
            entry.update(_runfile_plan(toolkit, entry["dir"], entry["work"]))
        plan.append(entry)
    return plan


def cuda_release_from_version_file(content: str, version_file: str) -> str:
    """The release an installed toolkit's version.txt or version.json shows ('' if none)."""
    if version_file.endswith(".json"):
        try:
            return str(json.loads(content).get("cuda", {}).get("version", ""))
        except (ValueError, AttributeError):
            return ""
    match = VERSION_TXT_RE.search(content)
    return match.group(1) if match else ""


def cuda_missing_toolkits(plan: list[dict[str, Any]], nvcc_results: list[dict[str, Any]],
                          version_results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runfile toolkits of `plan` that are not installed at the wanted release.

    `nvcc_results` are the registered results of a stat loop over the toolkits' bin/nvcc,
    `version_results` those of a slurp loop over stat results of their version files.
    """
    with_nvcc = {result["item"]["dir"] for result in nvcc_results if result.get("stat", {}).get("exists")}
    installed = {}
    for result in version_results:
        if "content" not in result:
            continue
        toolkit = result["item"]["item"]
        text = base64.b64decode(result["content"]).decode("utf-8", "replace")
        installed[toolkit["dir"]] = cuda_release_from_version_file(text, toolkit["version_file"])
    return [
        toolkit for toolkit in plan
        if toolkit["method"] == "runfile"
        and not (toolkit["dir"] in with_nvcc and installed.get(toolkit["dir"]) == toolkit["release"])
    ]


class FilterModule:
    """CUDA toolkit filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "cuda_toolkit_plan": cuda_toolkit_plan,
            "cuda_release_from_version_file": cuda_release_from_version_file,
            "cuda_missing_toolkits": cuda_missing_toolkits,
        }
