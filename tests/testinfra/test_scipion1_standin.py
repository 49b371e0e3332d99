"""Scipion 1.x installed by the scipion role from stand-ins (the stand-in git tree, EM
tarballs and course data of tests/fixtures/standins/scipion.py), and the course data."""

import configparser
import json
import os
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
PROFILE = yaml.safe_load((PROJECT / "inventories/profiles/scipion-1.1.yml").read_text())
RELEASE = "/usr/local/scipion"
DEVEL = "/usr/local/scipion_devel"
EM = f"{RELEASE}/software/em"
USER_CONF = "/home/ubuntu/.config/scipion/scipion.conf"
CACHE = "/var/cache/scipion_cloud/artifacts"
PACKAGES = [p["package"] for p in PROFILE["scipion_em_packages"]]
TARBALLS = [p["tarball"]["name"] for p in PROFILE["scipion_em_packages"]]


def standins() -> dict:
    mirror = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")) / "mirror" / "standins.json"
    if not mirror.exists():
        pytest.skip("stand-in manifest not found (run through molecule)")
    return json.loads(mirror.read_text())


def as_student(host, command: str):
    return host.run(f"sudo -u ubuntu -H {command}")


def conf(host, path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(host.file(path).content_string)
    return parser


@pytest.mark.parametrize(("tree", "commit"), [(RELEASE, "release_commit"), (DEVEL, "devel_commit")])
def test_tree_is_checked_out_at_its_pin_and_owned_by_the_student(host, tree, commit):
    head = as_student(host, f"git -C {tree} rev-parse HEAD")
    assert head.rc == 0, head.stderr
    # The devel pin is a short hash (the profile's e8b8aa22cf): the checkout is that commit.
    assert head.stdout.strip().startswith(standins()[commit])
    assert host.file(tree).user == "ubuntu"
    assert host.file(f"{tree}/scipion").user == "ubuntu"


@pytest.mark.parametrize(("command", "version"), [("scipion", "v1.1"), ("scipion_devel", "model_04_chimerafit")])
def test_commands_for_every_user(host, command, version):
    wrapper = host.file(f"/usr/local/bin/{command}")
    assert wrapper.mode == 0o755 and wrapper.user == "root"
    result = host.run(f"sudo -u nobody /usr/local/bin/{command} version")
    assert result.rc == 0, result.stderr
    assert result.stdout.startswith(f"Scipion {version}")


def test_config_ran_unattended_with_usage_statistics_off(host):
    user = conf(host, USER_CONF)
    assert user["VARIABLES"]["SCIPION_NOTIFY"] == "False"
    assert host.file(USER_CONF).user == "ubuntu"
    for tree in (RELEASE, DEVEL):
        for name in ("scipion.conf", "hosts.conf", "protocols.conf"):
            assert host.file(f"{tree}/config/{name}").exists, f"{tree}/config/{name}"


def test_build_section_has_cuda_7_5_and_the_distro_mpi(host):
    build = conf(host, f"{RELEASE}/config/scipion.conf")["BUILD"]
    assert build["CUDA"] == "True"
    assert build["CUDA_LIB"] == PROFILE["scipion_cuda_lib"] == "/usr/local/cuda-7.5/lib64"
    assert build["CUDA_BIN"] == PROFILE["scipion_cuda_bin"] == "/usr/local/cuda-7.5/bin"
    assert build["MPI_LIBDIR"] == "/usr/lib/x86_64-linux-gnu/openmpi/lib"


def test_motioncor2_and_relion_use_cuda_8(host):
    packages = conf(host, USER_CONF)["PACKAGES"]
    for key, value in PROFILE["scipion_package_variables"].items():
        assert packages[key] == value
        assert "cuda-8.0" in value
    env = as_student(host, "/usr/local/bin/scipion printenv")
    assert env.rc == 0, env.stderr
    assert 'RELION_CUDA_BIN="/usr/local/cuda-8.0/bin"' in env.stdout
    assert 'CUDA_BIN="/usr/local/cuda-7.5/bin"' in env.stdout


@pytest.mark.parametrize("package", PACKAGES)
def test_each_em_package_is_installed_by_exact_name_version(host, package):
    link = host.file(f"{EM}/{package}")
    assert link.exists, package
    assert host.file(link.linked_to if link.is_symlink else link.path).is_directory
    assert link.user == "ubuntu"


def test_package_commands_ran(host):
    # Relion was built with CUDA 8.0 first on PATH (RELION_CUDA_BIN), eman2 and Chimera ran their installers.
    assert "CUDA_BIN=/usr/local/cuda-8.0/bin" in host.file(f"{EM}/relion-2.0/relion_build.log").content_string
    assert host.file(f"{EM}/relion-2.0/bin/relion_refine").is_file
    assert host.file(f"{EM}/eman-2.12/eman2.bashrc").is_file
    assert host.run(f"{EM}/chimera-1.10.1/bin/chimera").stdout.startswith("chimera 1.10.1")
    assert host.file(f"{EM}/spider-21.13/spider/bin/spider_linux_mp_intel64").is_file


def test_installer_lists_the_packages_as_installed(host):
    listing = as_student(host, "/usr/local/bin/scipion install --help")
    assert listing.rc == 0, listing.stderr
    for package in PACKAGES:
        assert f"  {package} (*)" in listing.stdout


def test_devel_tree_has_its_own_build_and_packages(host):
    assert host.file(f"{DEVEL}/software/log/success.log").is_file
    assert host.file(f"{DEVEL}/software/em/{PACKAGES[0]}").exists


def test_downloaded_tarballs_are_removed(host):
    for tree in (RELEASE, DEVEL):
        left = host.run(f"find {tree}/software/em {tree}/software/tmp -maxdepth 1 -name '*.tgz'")
        assert left.stdout == "", left.stdout
    cached = host.run(f"ls {CACHE}").stdout.split()
    assert not set(cached) & set(TARBALLS + ["relion13_tutorial.tgz", "FEICourse.tgz"]), cached


def test_desktop_entry_starts_scipion(host):
    entry = host.file("/usr/share/applications/scipion.desktop")
    assert "Exec=/usr/local/bin/scipion\n" in entry.content_string
    assert entry.mode == 0o644


def test_dataset_files_match_their_md5(host):
    for name, md5 in standins()["dataset_md5"].items():
        data = host.file(f"/data/relion13_tutorial/{name}")
        assert data.md5sum == md5, name
        assert data.user == "ubuntu", name


def test_feicourse_opens_and_its_imports_resolve_into_data(host):
    project = "/home/ubuntu/ScipionUserData/projects/FEICourse"
    assert host.file(project).user == "ubuntu"
    opened = as_student(host, "/usr/local/bin/scipion project FEICourse")
    assert opened.rc == 0, opened.stderr
    for movie in standins()["movies"]:
        link = host.file(f"{project}/Runs/000002_ProtImportMovies/extra/{movie}")
        assert link.is_symlink and link.user == "ubuntu"
        assert link.linked_to == f"/data/relion13_tutorial/betagal/Micrographs/{movie}"
        assert host.file(link.linked_to).is_file


def test_standin_sums_are_the_profile_names(host):
    # Every tarball the profile declares has a stand-in under the same name.
    assert set(TARBALLS) <= set(standins()["sha256"]), set(TARBALLS) - set(standins()["sha256"])
