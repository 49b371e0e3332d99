"""The artifact role left verified files in the target's cache, and nothing half-done."""

import hashlib
import json

CACHE = "/var/cache/scipion_cloud/artifacts"
FILES = {
    "standin-course-data.tar": "stand-in artifact served from a mirror folder on the target\n",
    "standin-installer.run": "stand-in artifact downloaded on the controller\n",
}


def test_cache_folder_is_root_owned(host):
    cache = host.file(CACHE)
    assert cache.is_directory
    assert cache.user == "root"
    assert cache.mode == 0o755


def test_each_artifact_is_cached_with_its_checksum(host):
    for name, content in FILES.items():
        cached = host.file(f"{CACHE}/{name}")
        assert cached.is_file, name
        assert cached.sha256sum == hashlib.sha256(content.encode()).hexdigest(), name
        assert cached.mode == 0o644, name


def test_no_partial_downloads_left(host):
    assert host.run(f"ls {CACHE}").stdout.split() == sorted(FILES)


def test_role_reports_the_paths(host):
    paths = json.loads(host.file("/var/cache/scipion_cloud/artifact-paths.json").content_string)
    assert paths == {name: f"{CACHE}/{name}" for name in FILES}
