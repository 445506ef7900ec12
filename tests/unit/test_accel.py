"""Accelerator choice: the PVM hint and the per-host cache (no QEMU started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.vm import accel


def test_pvm_hint_names_the_module(tmp_path: Path) -> None:
    assert accel.kvm_provider_hint(tmp_path) == ""
    (tmp_path / "kvm_pvm").mkdir()
    hint = accel.kvm_provider_hint(tmp_path)
    assert "PVM" in hint and "kvm_pvm" in hint and "TCG" in hint


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(accel, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(accel, "_host_key", lambda: "host-a|6.1|QEMU 7.2")
    sys_module = tmp_path / "sys-module"
    (sys_module / "kvm_pvm").mkdir(parents=True)
    monkeypatch.setattr(accel, "SYS_MODULE", sys_module)
    return tmp_path


def test_failed_probe_is_cached_with_the_pvm_reason(host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probes: list[Path] = []

    def failing_probe(kernel: Path, timeout_s: float = accel.PROBE_TIMEOUT_S) -> tuple[bool, str]:
        probes.append(kernel)
        return False, "a stock kernel did not finish booting under KVM in 12 s (0 bytes of console)"

    monkeypatch.setattr(accel, "probe_kvm", failing_probe)
    first = accel.choose(host / "vmlinuz")
    assert first.accel == "tcg" and not first.cached
    assert first.reason.startswith("a stock kernel did not finish") and "kvm_pvm" in first.reason
    second = accel.choose(host / "vmlinuz")
    assert second.cached and (second.accel, second.reason) == (first.accel, first.reason)
    assert len(probes) == 1, "the cached result must spare a second probe"


def test_working_kvm_gets_no_hint(host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "probe_kvm", lambda kernel, timeout_s=0: (True, "KVM booted in 1.0 s"))
    choice = accel.choose(host / "vmlinuz")
    assert (choice.accel, choice.reason) == ("kvm", "KVM booted in 1.0 s")


def test_forced_accel_skips_the_probe(host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "probe_kvm", lambda *a, **k: pytest.fail("probe must not run"))
    assert accel.choose(None, "tcg").reason == "forced by --accel tcg"
