"""The course data on its own volume (molecule scenario `course_data_volume`): a blank loop
device standing in for a cloud data disk, formatted, mounted at /data and filled."""

import pytest


@pytest.fixture(scope="module")
def device(host):
    return host.file("/etc/data-disk").content_string.strip()

def test_data_is_an_ext4_mount_of_the_volume(host, device):
    mount = host.mount_point("/data")
    assert mount.exists, "/data is not a mount point"
    assert mount.device == device and mount.filesystem == "ext4", (mount.device, mount.filesystem)

def test_mount_is_in_fstab_so_it_survives_a_reboot(host, device):
    entries = [line.split() for line in host.file("/etc/fstab").content_string.splitlines() if line.strip() and not line.startswith("#")]
    assert [device, "/data", "ext4", "defaults,nofail", "0", "0"] in entries, entries

def test_dataset_is_on_the_volume_and_matches_its_manifest(host):
    check = host.run("cd /data/relion13_tutorial && while read -r path md5; do "
                     "echo \"$md5  $path\"; done < MANIFEST | md5sum --check --quiet")
    assert check.rc == 0, check.stdout + check.stderr
    assert host.run("df --output=source /data/relion13_tutorial/MANIFEST").stdout.split()[-1].startswith("/dev/loop")

def test_dataset_belongs_to_the_student(host):
    assert host.run("find /data/relion13_tutorial ! -user ubuntu -print -quit").stdout.strip() == ""
