"""aws_course_preflight checks that need no AWS endpoint: quota classes, GPU messages, bad profiles, GPU program fit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.modules import aws_course_preflight as preflight  # noqa: E402

GPU_TABLE = yaml.safe_load((PROJECT / "roles/course/vars/gpu_support.yml").read_text())["__course_gpu_support"]


def params(**changes: object) -> dict:
    base = {"course": "c", "region": "eu-west-1", "instance_type": "g4dn.xlarge", "seats": 2, "elastic_ips": False,
            "spot": False, "driver_branch": "384", "require_gpu": True, "gpu_support": GPU_TABLE, "compare_regions": []}
    return {**base, **changes}


@pytest.mark.parametrize(("instance_type", "klass"), [
    ("g4dn.xlarge", "G"), ("g5.xlarge", "G"), ("p3.2xlarge", "P"), ("t3.micro", "Standard"),
    ("m5.large", "Standard"), ("inf1.xlarge", None), ("x2idn.16xlarge", None),
])
def test_instance_class(instance_type: str, klass: str | None) -> None:
    assert preflight.instance_class(instance_type) == klass


def test_retired_p2_uses_the_family_table_and_drives_with_384() -> None:
    gpu = preflight.gpus.gpu_of_type(GPU_TABLE, "p2.xlarge")
    result = preflight.gpu_check(params(instance_type="p2.xlarge"), GPU_TABLE, gpu, [])
    assert result == {"name": "GPU and driver", "ok": True, "fix": "",
                      "detail": "driver branch 384 drives the K80 (Kepler) of p2.xlarge."}


def test_current_driver_on_kepler_is_refused() -> None:
    result = preflight.gpu_check(params(instance_type="p2.xlarge", driver_branch="550"), GPU_TABLE, "K80",
                                 ["g4dn.xlarge", "g5.xlarge"])
    assert result["detail"] == ("driver branch 550 cannot drive the K80 (Kepler) of p2.xlarge: the K80 needs "
                                "branch 470 or earlier.")
    assert result["fix"] == ("Set profile_vars.nvidia_driver_branch to one of 384, 390, 410, 418, 440, 450, 460, 470 "
                             "(the CUDA toolkits of the profile keep working on a newer driver), or choose an instance "
                             "type that branch 550 drives; offered in eu-west-1: g4dn.xlarge, g5.xlarge.")


def test_type_without_gpu_for_a_gpu_profile() -> None:
    result = preflight.gpu_check(params(instance_type="t3.micro"), GPU_TABLE, None, ["g4dn.xlarge"])
    assert (result["ok"], result["detail"]) == (False, "t3.micro has no NVIDIA GPU, and the profile needs one.")
    assert preflight.gpu_check(params(instance_type="t3.micro", require_gpu=False), GPU_TABLE, None, [])["ok"]


def test_unknown_gpu_and_bad_branch() -> None:
    assert preflight.gpu_check(params(), GPU_TABLE, "B200", [])["fix"].startswith("Add the GPU")
    bad = preflight.gpu_check(params(driver_branch="latest"), GPU_TABLE, "T4", [])
    assert bad["detail"] == "nvidia_driver_branch 'latest' is not a driver branch number."


def test_missing_profile_is_a_credentials_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    result = preflight.run_checks(params())
    assert result["checks"] == [{
        "name": "credentials", "ok": False,
        "detail": "The config profile (no-such-profile) could not be found.",
        "fix": preflight.CREDENTIALS_FIX,
    }]
    assert preflight.CREDENTIALS_FIX.startswith("Set AWS_PROFILE to a profile of ~/.aws/credentials")


def test_missing_credentials_say_how_to_set_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    result = preflight.run_checks(params())
    assert result["checks"] == [{
        "name": "credentials", "ok": False,
        "detail": "No usable AWS credentials were found (Unable to locate credentials).",
        "fix": "Set AWS_PROFILE to a profile of ~/.aws/credentials or ~/.aws/config (aws configure --profile NAME), "
               "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys), "
               "then run again.",
    }]


# --- the profile's GPU programs (information, never a failed check) ------------------

PROFILE = yaml.safe_load((PROJECT / "inventories/profiles/scipion-1.1.yml").read_text())


def module_programs() -> list[dict]:
    """The profile's gpu_programs as the module's argument spec hands them over (every option present)."""
    return [{"build": "vendor", "architectures": None, "ptx": None, **program} for program in PROFILE["gpu_programs"]]


def test_gpu_facts_name_the_compute_capability() -> None:
    assert preflight.gpu_facts(GPU_TABLE, "T4") == {"name": "T4", "architecture": "Turing", "compute_capability": "7.5"}
    assert preflight.gpu_facts(GPU_TABLE, "B200") == {"name": "B200", "architecture": "unknown architecture",
                                                      "compute_capability": None}
    assert preflight.gpu_facts(GPU_TABLE, None) is None


def test_run_checks_reports_the_gpu_fit_without_failing_a_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto stand-in for AWS: g4dn.xlarge is described with its T4 by the API."""
    moto = pytest.importorskip("moto")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    with moto.mock_aws():
        result = preflight.run_checks(params(driver_branch="470", gpu_programs=module_programs()))
    assert [check["ok"] for check in result["checks"]] == [True] * 5
    assert "GPU program" not in " ".join(check["name"] for check in result["checks"])
    assert result["gpu"] == {"name": "T4", "architecture": "Turing", "compute_capability": "7.5"}
    assert [(fit["name"], fit["verdict"]) for fit in result["gpu_fit"]] == [
        ("Gctf", "needs_ptx"), ("Gautomatch", "needs_ptx"), ("motioncorr", "needs_ptx"), ("MotionCor2", "needs_ptx"),
        ("Relion", "needs_ptx")]
    assert result["gpu_fit"][0]["line"] == ("Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2): no native "
                                            "code for the T4 (7.5); runs only if the binary carries PTX, not known.")


def test_module_refuses_malformed_gpu_programs_before_any_aws_call(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ansible.module_utils.testing import patch_module_args

    def no_aws(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("AWS was called")

    monkeypatch.setattr(preflight, "run_checks", no_aws)
    args = {**params(), "gpu_programs": [{"name": "Gctf", "version": "1.06", "cuda": "7.5", "ptx": ["Maxwell"]}]}
    with patch_module_args(args), pytest.raises(SystemExit):
        preflight.main()
    answer = json.loads(capsys.readouterr().out)
    assert answer["failed"] is True
    assert answer["msg"] == ("The profile's gpu_programs cannot be read: gpu_programs[0] (Gctf).ptx: 'Maxwell' is not "
                             "a compute capability; write them as \"5.2\" or sm_52.")
