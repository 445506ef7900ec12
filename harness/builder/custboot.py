"""The customization boot: the work disk itself (not an overlay: this is the build) boots once under QEMU with
a NoCloud seed and a small facts disk, in a private network namespace like every boot, until it powers off.

Completion is QEMU exiting on the guest's poweroff with the program's marker on the serial console; the
program's own report (status, log, packages) is read from the facts disk afterwards.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from harness.builder.customize import DONE_MARKER, FACTS_SERIAL
from harness.builder.disk import create_sparse
from harness.errors import BuildError
from harness.helpers.egress import PROXY_PORT, EgressProxy
from harness.vm import firmware as fw
from harness.vm.accel import AccelChoice
from harness.vm.machine import VM
from harness.vm.netns import NetNamespace
from harness.vm.network import GATEWAY, AzureNetwork, NetworkPlan
from harness.vm.qemu import Drive, Nic, VMSpec

log = logging.getLogger(__name__)

MAC = "52:54:00:12:34:57"
FACTS_DISK_BYTES = 16 * 1024 * 1024
POLL_S = 0.5


@dataclass(frozen=True)
class CustomizeBoot:
    name: str
    disk: Path  # raw, written in place
    seed: Path
    facts: Path
    evidence: Path  # serial log and QEMU argv are kept here
    firmware: str
    accel: AccelChoice
    timeout_s: float
    memory_mib: int = 2048
    cpus: int = 2


def facts_args(facts: Path) -> tuple[str, ...]:
    """The facts disk: a virtio disk the guest finds as /dev/disk/by-id/virtio-harness-facts."""
    return ("-drive", f"if=none,id=facts,file={facts},format=raw,cache=unsafe",
            "-device", f"virtio-blk-pci,drive=facts,serial={FACTS_SERIAL}")


def spec(boot: CustomizeBoot, scratch: Path) -> VMSpec:
    code = variables = None
    if boot.firmware == "uefi":
        code, template = fw.ovmf_files()
        variables = fw.private_vars(template, scratch / "OVMF_VARS.fd")
    else:
        fw.check_seabios()
    return VMSpec(
        name=f"{boot.name}-customize", firmware=boot.firmware, accel=boot.accel.accel, disk=Drive(boot.disk, "raw"),
        serial_log=boot.evidence / "serial.log", qmp_socket=scratch / "qmp.sock", memory_mib=boot.memory_mib,
        cpus=boot.cpus, cdrom=Drive(boot.seed, "raw", readonly=True), nic=Nic("tap0", MAC), ovmf_code=code,
        ovmf_vars=variables, smbios=("-uuid", str(uuid.uuid4())), extra=facts_args(boot.facts),
    )


def run_boot(boot: CustomizeBoot) -> str:
    """Boot until the guest powers off; returns the serial log. Fails fast on a dead console or a timeout."""
    boot.evidence.mkdir(parents=True, exist_ok=True)
    create_sparse(boot.facts, FACTS_DISK_BYTES)
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-customize-")))
        ns = stack.enter_context(NetNamespace())
        # plain DHCP, nothing routed out: the guest can reach no real IMDS, WireServer or archive
        stack.enter_context(AzureNetwork(ns, NetworkPlan(mac=MAC, hostname="localhost", azure_options=False),
                                         scratch))
        proxy = stack.enter_context(EgressProxy(scratch / "egress.sock"))
        stack.callback(_save_egress_log, proxy, boot.evidence)
        _start_bridge(ns, proxy, scratch, stack)
        log.info("customize: booting %s (%s, %s) until it powers off", boot.disk.name, boot.firmware,
                 boot.accel.accel)
        vm = stack.enter_context(VM(spec(boot, scratch), boot.evidence, prefix=ns.prefix()))
        _wait_poweroff(vm, boot)
        serial = vm.serial()
    if DONE_MARKER not in serial:
        raise BuildError("the customization boot powered off without its program finishing",
                         f"see {boot.evidence / 'serial.log'} (--keep-workdir keeps it)")
    return serial


def _start_bridge(ns: NetNamespace, proxy: EgressProxy, scratch: Path, stack: ExitStack) -> None:
    """The proxy's address inside the namespace (the gateway's), carried to its unix socket."""
    output = scratch / "egress-bridge.txt"
    bridge = ns.spawn([sys.executable, "-m", "harness.helpers.egress", "bridge", str(proxy.path),
                       f"{GATEWAY}:{PROXY_PORT}"], name="egress-bridge", stdout_path=output)
    stack.callback(bridge.stop, 2.0)
    deadline = time.monotonic() + 10
    while "listening" not in (output.read_text(errors="replace") if output.exists() else ""):
        if bridge.poll() is not None or time.monotonic() > deadline:
            text = output.read_text(errors="replace").strip() if output.exists() else ""
            raise BuildError(f"the package proxy bridge did not start: {text.splitlines()[-1] if text else '?'}",
                             "check that python can bind the namespace's gateway address")
        time.sleep(0.05)


def _save_egress_log(proxy: EgressProxy, evidence: Path) -> None:
    (evidence / "egress.log").write_text("".join(f"{line}\n" for line in proxy.log), encoding="utf-8")


def _wait_poweroff(vm: VM, boot: CustomizeBoot) -> None:
    deadline = time.monotonic() + boot.timeout_s
    while vm.alive():
        fatal = vm.fatal_console()
        if fatal:
            raise BuildError(f"the customization boot failed: {fatal}",
                             f"see {boot.evidence / 'serial.log'} (--keep-workdir keeps it)")
        if time.monotonic() > deadline:
            started = "started" if "harness-customize: started" in vm.serial() else "never started"
            raise BuildError(f"the customization boot did not power off within {boot.timeout_s:.0f} s (the "
                             f"program {started})",
                             "an image without cloud-init or with its datasource locked to Azure ignores the "
                             f"NoCloud seed; see {boot.evidence / 'serial.log'} (--keep-workdir keeps it)")
        time.sleep(POLL_S)
