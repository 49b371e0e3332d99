"""Which of a profile's GPU programs can run on a GPU: compute capabilities, toolkit reach, PTX."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.filter import plan as plan_filter  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import gpu_support as gpus  # noqa: E402

GPU_TABLE = yaml.safe_load((PROJECT / "roles/course/vars/gpu_support.yml").read_text())["__course_gpu_support"]
# AWS's instance families: the course_aws role names the GPU of a type from them when AWS was not asked.
AWS_FAMILIES = yaml.safe_load((PROJECT / "roles/course_aws/vars/instance_types.yml").read_text())[
    "__course_aws_instance_types"]


def profile(name: str) -> dict[str, Any]:
    return yaml.safe_load((PROJECT / "inventories/profiles" / f"{name}.yml").read_text())


def program(**changes: Any) -> dict[str, Any]:
    return {"name": "Gctf", "version": "1.06", "cuda": "7.5", "build": "vendor", **changes}


def fit(gpu: str | None, **changes: Any) -> dict[str, Any]:
    return gpus.program_fit(GPU_TABLE, program(**changes), gpu)


def aws_course(instance_type: str) -> dict[str, Any]:
    return {"name": "c", "provider": "aws", "profile": "scipion-1.1", "aws": {"instance_type": instance_type}}


# --- the table -------------------------------------------------------------------

@pytest.mark.parametrize(("gpu", "capability"), [
    ("K20m", (3, 5)), ("K80", (3, 7)), ("V100", (7, 0)), ("T4", (7, 5)), ("A10G", (8, 6)), ("L4", (8, 9)),
    ("H100", (9, 0)),
])
def test_compute_capability_of_each_gpu(gpu: str, capability: tuple[int, int]) -> None:
    assert gpus.gpu_capability(GPU_TABLE, gpu) == capability


def test_every_gpu_of_the_table_has_a_compute_capability() -> None:
    assert [g for g in GPU_TABLE["gpus"] if gpus.gpu_capability(GPU_TABLE, g) is None] == []


@pytest.mark.parametrize(("cuda", "reach"), [
    ("7.5", ((2, 0), (5, 2))), ("8.0", ((2, 0), (6, 2))), (8, ((2, 0), (6, 2))), (8.0, ((2, 0), (6, 2))),
    ("12.4", ((5, 0), (9, 0))), ("9.2", None),
])
def test_toolkit_reach(cuda: Any, reach: Any) -> None:
    assert gpus.toolkit_reach(GPU_TABLE, cuda) == reach


@pytest.mark.parametrize(("text", "capability"), [
    ("7.5", (7, 5)), (7.5, (7, 5)), ("sm_52", (5, 2)), ("compute_35", (3, 5)), ("75", (7, 5)), ("sm_100", (10, 0)),
    ("sm_90a", (9, 0)), ("8.0", (8, 0)), ("Turing", None), ("", None), ("7.55", None),
])
def test_parse_capability(text: Any, capability: tuple[int, int] | None) -> None:
    assert gpus.parse_capability(text) == capability


# --- verdicts --------------------------------------------------------------------

def test_cuda_7_5_vendor_binary_on_a_t4_needs_ptx_which_is_not_known() -> None:
    result = fit("T4")
    assert result["verdict"] == "needs_ptx"
    assert result["line"] == ("Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2): no native code for the "
                              "T4 (7.5); runs only if the binary carries PTX, not known.")


@pytest.mark.parametrize("gpu", ["V100", "T4", "A10G", "L4"])
def test_cuda_8_0_cannot_carry_native_code_for_volta_or_later(gpu: str) -> None:
    result = fit(gpu, name="MotionCor2", version="1.0.2", cuda="8.0")
    assert result["verdict"] == "needs_ptx"
    assert result["detail"].startswith(f"no native code for the {gpu} (")


def test_cuda_8_0_reaches_pascal() -> None:
    result = fit("P100", cuda="8.0", architectures=["6.0"])
    assert (result["verdict"], result["detail"]) == ("native", "runs on the P100 (6.0) with its native code for 6.0")


def test_source_build_says_build_not_binary() -> None:
    result = fit("T4", name="Relion", version="2.0", cuda="8.0", build="source")
    assert result["line"] == ("Relion 2.0 (CUDA 8.0 build, reaches compute capability 6.2): no native code for the "
                              "T4 (7.5); runs only if the build carries PTX, not known.")


def test_within_reach_but_architectures_unknown_is_unknown() -> None:
    result = fit("K80")
    assert result["verdict"] == "unknown"
    assert result["detail"] == ("unknown: a CUDA 7.5 build can carry native code for the K80 (3.7), but which "
                                "architectures this binary carries is not known")


def test_native_code_of_the_same_major_and_a_lower_minor_runs() -> None:
    assert fit("K80", architectures=["3.5"])["detail"] == "runs on the K80 (3.7) with its native code for 3.5"
    assert fit("K80", architectures=["sm_30", "sm_37", "sm_52"])["detail"].endswith("native code for 3.7")


def test_native_code_of_a_higher_minor_or_another_major_does_not_run() -> None:
    result = fit("K20m", architectures=["3.7", "5.2"])
    assert result["verdict"] == "needs_ptx"
    assert result["detail"] == ("no native code for the K20m (3.5): it carries 3.7, 5.2; runs only if the binary "
                                "carries PTX, not known")


def test_known_ptx_runs_through_jit() -> None:
    result = fit("T4", ptx=["3.0", "5.2"])
    assert result["verdict"] == "ptx"
    assert result["detail"] == ("no native code for the T4 (7.5); runs through its PTX for 5.2, compiled by the "
                                "driver at start-up")


def test_known_absence_of_ptx_cannot_run() -> None:
    result = fit("T4", architectures=["2.0", "5.2"], ptx=[])
    assert result["verdict"] == "cannot"
    assert result["detail"] == "cannot run on the T4 (7.5): no native code and no PTX it can use"
    assert fit("K20m", architectures=["5.2"], ptx=["5.2"])["verdict"] == "cannot"  # PTX newer than the GPU


def test_gpu_below_the_toolkit_cannot_run() -> None:
    result = fit("K80", cuda="12.4")
    assert result["verdict"] == "cannot"
    assert result["detail"] == "cannot run on the K80 (3.7): CUDA 12.4 builds start at compute capability 5.0"


def test_unknown_gpu_toolkit_or_capability() -> None:
    assert fit(None)["detail"] == "unknown: the GPU model is not known"
    unknown_toolkit = fit("T4", cuda="9.2")
    assert unknown_toolkit["line"] == (
        "Gctf 1.06 (CUDA 9.2 build): unknown: roles/course/vars/gpu_support.yml does not say which compute "
        "capabilities CUDA 9.2 builds reach.")
    assert fit("B200")["detail"] == "unknown: roles/course/vars/gpu_support.yml gives no compute capability for the B200"


# --- malformed gpu_programs --------------------------------------------------------

def test_malformed_programs_are_named_with_what_to_write() -> None:
    problems = gpus.program_problems([
        {"name": "Gctf", "version": "1.06"},
        {"name": "X", "version": "1", "cuda": "8.0", "arch": ["5.2"]},
        {"name": "Y", "version": "1", "cuda": "8.0", "build": "binary", "ptx": ["Maxwell"]},
        "Relion",
    ])
    assert problems == [
        "gpu_programs[0] (Gctf) has no cuda; each GPU program needs name, version and cuda (the CUDA toolkit it was "
        "built with, such as \"7.5\").",
        "gpu_programs[1] (X): unknown key arch; the keys are name, version, cuda, build, architectures, ptx.",
        "gpu_programs[2] (Y).build is 'binary'; choose vendor (a vendor's binary) or source (built on the machine).",
        "gpu_programs[2] (Y).ptx: 'Maxwell' is not a compute capability; write them as \"5.2\" or sm_52.",
        "gpu_programs[3] must be a mapping with name, version and cuda (got 'Relion').",
    ]
    with pytest.raises(gpus.GpuProgramError, match=r"gpu_programs\[0\] \(Gctf\) has no cuda"):
        gpus.programs_fit(GPU_TABLE, [{"name": "Gctf", "version": "1.06"}], "T4")


def test_no_programs_is_fine() -> None:
    assert gpus.program_problems(None) == [] and gpus.program_problems([]) == []
    assert gpus.programs_fit(GPU_TABLE, None, "T4") == []


# --- the shipped profiles and courses ------------------------------------------------

def test_scipion_1_1_declares_the_2018_gpu_programs() -> None:
    programs = profile("scipion-1.1")["gpu_programs"]
    assert gpus.program_problems(programs) == []
    assert [(p["name"], p["version"], p["cuda"], p["build"]) for p in programs] == [
        ("Gctf", "1.06", "7.5", "vendor"), ("Gautomatch", "0.53", "7.5", "vendor"),
        ("motioncorr", "2.1", "7.5", "vendor"), ("MotionCor2", "1.0.2", "8.0", "vendor"),
        ("Relion", "2.0", "8.0", "source"),
    ]
    # Nothing is claimed about the code the 2018 files carry.
    assert [p for p in programs if "architectures" in p or "ptx" in p] == []


def test_madrid_plan_lines_on_the_t4() -> None:
    madrid = yaml.safe_load((PROJECT / "inventories/courses/madrid.yml").read_text())
    course = {**madrid, "name": "madrid"}
    gpu = gpus.gpu_of_type(AWS_FAMILIES, course["aws"]["instance_type"])
    result = plan_filter.course_gpu_fit(course, profile("scipion-1.1"), GPU_TABLE, gpu)
    assert result["gpu"] == "T4"
    assert [p["verdict"] for p in result["programs"]] == ["needs_ptx"] * 5
    assert result["lines"][:3] == [
        "GPU programs of profile scipion-1.1 on the T4 (compute capability 7.5) of g4dn.xlarge:",
        "Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2): no native code for the T4 (7.5); runs only if "
        "the binary carries PTX, not known.",
        "Gautomatch 0.53 (CUDA 7.5 build, reaches compute capability 5.2): no native code for the T4 (7.5); runs "
        "only if the binary carries PTX, not known.",
    ]
    assert result["lines"][4].startswith("MotionCor2 1.0.2 (CUDA 8.0 build, reaches compute capability 6.2): no "
                                         "native code for the T4 (7.5)")
    assert result["lines"][-1] == gpus.CHECK_ON_A_SEAT


def test_api_gpu_name_wins_over_the_family_table() -> None:
    result = plan_filter.course_gpu_fit(aws_course("g4dn.xlarge"), profile("scipion-1.1"), GPU_TABLE, "V100")
    assert result["gpu"] == "V100"
    assert result["lines"][0] == "GPU programs of profile scipion-1.1 on the V100 (compute capability 7.0) of g4dn.xlarge:"


def test_p2_of_2018_is_within_reach_but_the_binaries_are_unknown() -> None:
    result = plan_filter.course_gpu_fit(aws_course("p2.xlarge"), profile("scipion-1.1"), GPU_TABLE,
                                        gpus.gpu_of_type(AWS_FAMILIES, "p2.xlarge"))
    assert result["gpu"] == "K80"
    assert [p["verdict"] for p in result["programs"]] == ["unknown"] * 5


def test_openstack_flavour_without_a_known_gpu_is_unknown() -> None:
    fedcloud = {"name": "fedcloud", "provider": "openstack", "profile": "scipion-1.1",
                "openstack": {"flavor": "g1.c06r12"}}
    result = plan_filter.course_gpu_fit(fedcloud, profile("scipion-1.1"), GPU_TABLE)
    assert result["gpu"] is None
    assert result["lines"][0] == "GPU programs of profile scipion-1.1 on flavour g1.c06r12:"
    assert result["lines"][1] == ("Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2): unknown: the GPU "
                                  "model of flavour g1.c06r12 is not known.")
    assert len(result["lines"]) == 6  # no advice to inspect binaries on a GPU nobody named


def test_profile_without_gpu_programs_prints_nothing() -> None:
    scipion3 = profile("scipion-3")
    assert "gpu_programs" not in scipion3
    assert plan_filter.course_gpu_fit(aws_course("g4dn.xlarge"), scipion3, GPU_TABLE) == {
        "gpu": None, "programs": [], "lines": []}
    assert plan_filter.course_gpu_fit(aws_course("g4dn.xlarge"), {**scipion3, "gpu_programs": []}, GPU_TABLE)[
        "lines"] == []


def test_course_without_gpu_says_so() -> None:
    result = plan_filter.course_gpu_fit(aws_course("g4dn.xlarge"), {**profile("scipion-1.1"), "gpu": False}, GPU_TABLE)
    assert result["lines"] == ["GPU programs of profile scipion-1.1: the course runs without GPU components "
                               "(gpu: false), so they have no GPU to run on."]


def test_malformed_profile_programs_fail_the_filter_naming_the_profile() -> None:
    broken = {**profile("scipion-1.1"), "gpu_programs": [{"name": "Gctf", "version": "1.06"}]}
    with pytest.raises(AnsibleFilterError, match=r"^Profile scipion-1.1: gpu_programs\[0\] \(Gctf\) has no cuda"):
        plan_filter.course_gpu_fit(aws_course("g4dn.xlarge"), broken, GPU_TABLE)
