"""The course data on a seat: every dataset file matches its MANIFEST, the student owns it."""

from __future__ import annotations

import json

import pytest

# md5 of every MANIFEST line, computed on the seat; prints the files that differ.
CHECK_PY = ("import hashlib,json,os,sys; root=sys.argv[1]; bad=[]\n"
            "for line in open(os.path.join(root, sys.argv[2])):\n"
            "  path, md5 = line.rsplit(None, 1)\n"
            "  try: ok = hashlib.md5(open(os.path.join(root, path),'rb').read()).hexdigest() == md5\n"
            "  except OSError: ok = False\n"
            "  ok or bad.append(path)\n"
            "print(json.dumps(bad))")


def datasets(profile):
    return [pytest.param(d, id=d["name"]) for d in profile["course_data_datasets"]]


def test_every_dataset_matches_its_manifest(host, profile):
    if not profile["course_data_datasets"]:
        pytest.skip("the profile declares no dataset")
    for dataset in profile["course_data_datasets"]:
        folder = f"{profile['course_data_root']}/{dataset['name']}"
        manifest = dataset.get("manifest", "MANIFEST")
        assert host.file(f"{folder}/{manifest}").is_file, f"{folder}/{manifest} is missing"
        result = host.run(f"python3 -c \"{CHECK_PY}\" {folder} {manifest}")
        assert result.rc == 0, result.stderr
        bad = json.loads(result.stdout)
        assert not bad, f"{dataset['name']}: {len(bad)} files missing or corrupted, first: {bad[:5]}"


def test_data_belongs_to_the_student(host, profile):
    if not profile["course_data_datasets"]:
        pytest.skip("the profile declares no dataset")
    user = profile["course_data_user"]
    for dataset in profile["course_data_datasets"]:
        folder = f"{profile['course_data_root']}/{dataset['name']}"
        foreign = host.run(f"find {folder} ! -user {user} -print -quit").stdout.strip()
        assert not foreign, f"{foreign} is not owned by {user}"


def test_course_projects_are_in_place(host, profile):
    if not profile["course_data_projects"]:
        pytest.skip("the profile declares no finished project")
    home = f"/home/{profile['course_data_user']}/{profile['course_data_user_data_dir']}/projects"
    missing = [p["name"] for p in profile["course_data_projects"] if not host.file(f"{home}/{p['name']}").is_directory]
    assert not missing, f"projects missing under {home}: {missing}"
