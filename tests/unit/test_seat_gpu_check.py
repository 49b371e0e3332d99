"""The seat suite's GPU gate: skipped without a card, red for a card without a driver."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

PROJECT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("test_seat_gpu", PROJECT / "roles/verify/seat_checks/test_seat_gpu.py")
seat_gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seat_gpu)


class FakeSeat:
    """Answers the two questions the gate asks a seat: the PCI vendors and /dev/nvidia0."""

    def __init__(self, nvidia_cards: list[str], device: bool) -> None:
        self.cards = nvidia_cards
        self.device = device
        self.commands: list[str] = []

    def run(self, command: str) -> SimpleNamespace:
        self.commands.append(command)
        found = "".join(f"/sys/bus/pci/devices/{card}/vendor\n" for card in self.cards)
        return SimpleNamespace(rc=0 if self.cards else 1, stdout=found, stderr="")

    def file(self, path: str) -> SimpleNamespace:
        return SimpleNamespace(exists=self.device and path == "/dev/nvidia0")


def test_course_without_gpu_components_skips_without_asking_the_seat():
    seat = FakeSeat(["0000:00:1e.0"], device=True)
    with pytest.raises(pytest.skip.Exception, match="without GPU components"):
        seat_gpu.require_gpu(seat, {"gpu": False})
    assert seat.commands == []


def test_seat_without_an_nvidia_card_skips():
    with pytest.raises(pytest.skip.Exception, match="no NVIDIA card"):
        seat_gpu.require_gpu(FakeSeat([], device=False), {"gpu": True})


def test_card_without_a_loaded_driver_fails_with_the_reason():
    with pytest.raises(AssertionError, match="driver is not loaded"):
        seat_gpu.require_gpu(FakeSeat(["0000:00:1e.0"], device=False), {"gpu": True})


def test_card_with_its_driver_runs_the_checks():
    assert seat_gpu.require_gpu(FakeSeat(["0000:00:1e.0"], device=True), {"gpu": True}) is None
