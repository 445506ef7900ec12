"""One boot of a build on a fake platform: scratch folder, media, namespace, network, platform, QEMU.

Everything is owned by an ExitStack, so whatever fails, every process is stopped and reaped. The
serial log, QEMU argv and platform logs go to the build's evidence folder
(`verify/<firmware>-<platform>/`); the overlay, OVMF vars and media live in a scratch folder that
`--keep` keeps (always / on-error / never).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.buildfolder import BuildFolder, builds_root
from harness.enums import DiskController, Firmware, SecurityType
from harness.errors import VerifyError
from harness.housekeeping import take_lock
from harness.platform import ovf
from harness.platform.config import PlatformConfig, qemu_smbios_args
from harness.platform.faults import FaultRule, FaultSet
from harness.verify.configs import VmConfiguration
from harness.verify.events import PlatformView
from harness.vm import firmware as fw
from harness.vm.accel import AccelChoice
from harness.vm.machine import VM, create_overlay
from harness.vm.netns import NetNamespace
from harness.vm.network import GATEWAY, GUEST_IP, IMDS, PREFIX, WIRESERVER, AzureNetwork, NetworkPlan
from harness.vm.qemu import Drive, Nic, VMSpec
from harness.vm.ssh import Guest, KeyPair, generate_keypair
from harness.vm.tpm import SoftwareTpm

log = logging.getLogger(__name__)

MAC = "52:54:00:12:34:56"
GROW_BYTES = 1024 * 1024 * 1024  # the overlay is 1 GiB larger than the disk: growpart must use it
# A guest at its login prompt that has not contacted the platform this long after it has no working agent.
# cloud-init talks to IMDS in its first (pre-network) stage, long before getty starts; waagent only after
# the network is up, which can be minutes later on a loaded TCG host.
SILENT_AGENT_GRACE_S = {"cloud-init": 60.0, "waagent": 300.0}
PERMANENT_FAULT_HITS = 20
# A Linux kernel's first console line: with earlyprintk=ttyS0 (an Azure kernel parameter) it appears as soon
# as the kernel runs, so its arrival ends the firmware + bootloader part of a boot.
KERNEL_BANNER = "Linux version "
# The boot has finished: a login prompt, or systemd's multi-user target / runlevel record on the console
# (the prompt itself may never come when services it is ordered after failed).
BOOT_FINISHED_RE = re.compile(r"^\S+ login: |Reached target .*Multi-User System|Record Runlevel Change in UTMP", re.M)
KEEP_POLICIES = ("never", "on-error", "always")


@dataclass(frozen=True)
class BootRequest:
    build: BuildFolder
    firmware: str
    platform: str  # azure | nocloud
    accel: AccelChoice
    keep: str = "on-error"
    faults: tuple[str, ...] = ()
    timeout_s: float = 300.0
    memory_mib: int = 2048
    cpus: int = 2
    provision_guest_agent: bool = True
    security_type: str = SecurityType.STANDARD  # trusted-launch: Secure Boot with Microsoft's keys + a TPM 2.0
    disk_controller: str = DiskController.SCSI  # nvme: the OS disk on an NVMe controller

    @property
    def configuration(self) -> VmConfiguration:
        return VmConfiguration(Firmware(self.firmware), SecurityType(self.security_type),
                               DiskController(self.disk_controller))

    @property
    def name(self) -> str:
        """The boot's name, also its evidence folder: bios-azure, uefi-trusted-launch-nvme-azure ..."""
        return f"{self.configuration.name}-{self.platform}"


@dataclass
class BootTimings:
    """Seconds since QEMU started."""

    first_serial_s: float | None = None
    kernel_s: float | None = None  # the kernel's banner on the console: firmware and bootloader are done
    imds_first_s: float | None = None
    goalstate_first_s: float | None = None
    ready_s: float | None = None
    ssh_ready_s: float | None = None
    checks_done_s: float | None = None  # every in-guest check and the guest's logs collected

    def to_json(self) -> dict[str, float | None]:
        return {k: (round(v, 1) if v is not None else None) for k, v in self.__dict__.items()}


SUN_PATH_MAX = 107  # a Unix socket path is at most 108 bytes with its NUL
SOCKET_NAMES = ("ssh.sock", "qmp.sock", "swtpm-sock")


def socket_dir(scratch: Path) -> Path:
    """Where a boot's Unix sockets go: its scratch folder when every socket path fits in sun_path, else a short
    folder of its own under /tmp (a deep builds folder, e.g. a CI workspace, would make bind() fail)."""
    longest = max(len(name) for name in SOCKET_NAMES) + 1
    if len(os.fsencode(scratch)) + longest <= SUN_PATH_MAX:
        return scratch
    for base in (Path(tempfile.gettempdir()), Path("/tmp")):
        if len(os.fsencode(base)) + len("/harness-sock-XXXXXXXX") + longest <= SUN_PATH_MAX:
            return Path(tempfile.mkdtemp(prefix="harness-sock-", dir=base))
    raise VerifyError(f"no folder short enough for the boot's sockets (scratch {scratch})",
                      "set TMPDIR to a short path such as /tmp")


@dataclass
class BootSession:
    request: BootRequest
    evidence: Path = field(init=False)
    scratch: Path = field(init=False)
    sockets: Path = field(init=False)  # the Unix sockets' folder: the scratch folder, or a short one (socket_dir)
    config: PlatformConfig = field(init=False)
    key: KeyPair = field(init=False)
    timings: BootTimings = field(default_factory=BootTimings)
    vm: VM | None = None
    ns: NetNamespace | None = None
    network: AzureNetwork | None = None
    view: PlatformView | None = None
    failed: bool = False
    disk_size_bytes: int = 0
    overlay_size_bytes: int = 0
    _stack: ExitStack = field(default_factory=ExitStack)
    _qemu_wall_start: float = 0.0
    _login_seen_at: float | None = None
    _silent_grace_s: float = 300.0
    _permanent: list[FaultRule] = field(default_factory=list)
    _scratch_lock: int | None = None  # descriptor holding the scratch folder's .lock

    # -- setup -------------------------------------------------------------------------------
    def __enter__(self) -> BootSession:
        req = self.request
        self.evidence = req.build.path / "verify" / req.name
        if self.evidence.exists():
            shutil.rmtree(self.evidence)
        self.evidence.mkdir(parents=True)
        scratch_root = builds_root() / ".scratch"
        scratch_root.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{req.build.recipe_name}-{req.name}-",
                                             dir=scratch_root))
        self.sockets = self.scratch
        try:
            self._scratch_lock = take_lock(self.scratch)  # held while booting: `builds prune` leaves it alone
            self.sockets = socket_dir(self.scratch)
            self._setup()
        except BaseException:
            self.failed = True
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _setup(self) -> None:
        req = self.request
        self._permanent = [r for r in FaultSet.parse(req.faults).rules if r.count is None]
        self._silent_grace_s = SILENT_AGENT_GRACE_S.get(self.agent, 300.0)
        self.key = generate_keypair(self.scratch)
        config = PlatformConfig.new(ssh_public_key=self.key.public_line, firmware=req.firmware, mac=MAC,
                                    ipv4_address=GUEST_IP, ipv4_prefix=PREFIX, ipv4_gateway=GATEWAY,
                                    provision_guest_agent=req.provision_guest_agent)
        self.config = ovf.for_agent(config, self.agent)  # e.g. an Ignition config as Flatcar's custom data
        self.config.write_json(self.scratch / "platform.json")
        cdrom = self._media()
        self.ns = self._stack.enter_context(NetNamespace())
        plan = NetworkPlan(mac=MAC, hostname=self.config.hostname, azure_options=req.platform == "azure")
        self.network = self._stack.enter_context(AzureNetwork(self.ns, plan, self.scratch))
        (self.evidence / "network.txt").write_text(
            f"guest {GUEST_IP}/{PREFIX} gateway {GATEWAY} mac {MAC}\n", encoding="utf-8")
        if req.platform == "azure":
            self._start_platform()
        self._start_ssh_bridge()
        tpm = None
        if req.security_type == SecurityType.TRUSTED_LAUNCH:
            tpm = self._stack.enter_context(SoftwareTpm(self.scratch / "tpm", self.evidence / "swtpm.log",
                                                             socket=self.sockets / "swtpm-sock"))
        self.vm = self._stack.enter_context(VM(self._spec(cdrom, tpm), self.evidence, prefix=self.ns.prefix()))
        self._qemu_wall_start = time.time()
        (self.evidence / "accel.txt").write_text(f"{req.accel.accel}: {req.accel.reason}\n", encoding="utf-8")

    def _media(self) -> Drive:
        from harness.platform import nocloud

        if self.request.platform == "azure":
            iso = self.scratch / "provisioning.iso"
            ovf.provisioning_udf(self.config, iso)  # as Azure attaches it, whatever the agent
        else:
            iso = self.scratch / "seed.iso"
            user_data, meta_data = nocloud.nocloud_user_data(self.config)
            nocloud.seed_iso(iso, user_data=user_data, meta_data=meta_data, network_config=None)
        return Drive(iso, "raw", readonly=True)

    def _start_platform(self) -> None:
        assert self.ns is not None
        events = self.evidence / "platform-events.jsonl"
        requests = self.evidence / "platform-requests.jsonl"
        argv = [sys.executable, "-m", "harness.helpers.platformd", "--config", str(self.scratch / "platform.json"),
                "--log", str(requests), "--events", str(events),
                "--bind", f"imds={IMDS}:80", "--bind", f"wireserver={WIRESERVER}:80",
                "--bind", f"hostgaplugin={WIRESERVER}:32526"]
        for rule in self.request.faults:
            argv += ["--fault", rule]
        daemon = self.ns.spawn(argv, name="fake-azure", stdout_path=self.evidence / "platform-daemon.txt")
        self._stack.callback(daemon.stop, 5.0)
        self.view = PlatformView(events, requests)
        deadline = time.monotonic() + 15
        while not self.view.refresh().started():
            if daemon.poll() is not None or time.monotonic() > deadline:
                text = (self.evidence / "platform-daemon.txt").read_text(errors="replace").strip()
                raise VerifyError(f"the fake Azure platform did not start: {text.splitlines()[-1] if text else '?'}",
                                  f"see {self.evidence_rel}/platform-daemon.txt in the build folder")
            time.sleep(0.05)

    def _start_ssh_bridge(self) -> None:
        assert self.ns is not None
        sock = self.ssh_socket
        argv = [sys.executable, "-m", "harness.helpers.sshproxy", "listen", str(sock), f"{GUEST_IP}:22"]
        bridge = self.ns.spawn(argv, name="ssh-bridge", stdout_path=self.scratch / "ssh-bridge.txt")
        self._stack.callback(bridge.stop, 2.0)
        deadline = time.monotonic() + 10
        while not sock.exists():
            if bridge.poll() is not None or time.monotonic() > deadline:
                raise VerifyError("the SSH bridge into the namespace did not start", f"see {self.scratch}")
            time.sleep(0.05)

    def _spec(self, cdrom: Drive, tpm: SoftwareTpm | None) -> VMSpec:
        req = self.request
        build = req.build
        disk = build.disk()
        self.disk_size_bytes = build.manifest().disk.size_bytes
        self.overlay_size_bytes = self.disk_size_bytes + GROW_BYTES
        overlay = self.scratch / "overlay.qcow2"
        create_overlay(disk, build.disk_format(), overlay, self.overlay_size_bytes)
        code = variables = None
        secure_boot = req.security_type == SecurityType.TRUSTED_LAUNCH
        if req.firmware == "uefi":
            code, template = fw.ovmf_files(secure_boot=secure_boot)
            variables = fw.private_vars(template, self.scratch / "OVMF_VARS.fd")
        else:
            fw.check_seabios()
        azure = req.platform == "azure"
        return VMSpec(
            name=f"{build.recipe_name}-{req.name}", firmware=req.firmware, accel=req.accel.accel,
            disk=Drive(overlay, "qcow2"), serial_log=self.evidence / "serial.log",
            qmp_socket=self.sockets / "qmp.sock", memory_mib=req.memory_mib, cpus=req.cpus, cdrom=cdrom,
            nic=Nic("tap0", MAC), ovmf_code=code, ovmf_vars=variables,
            smbios=tuple(qemu_smbios_args(self.config)) if azure else ("-uuid", self.config.smbios_uuid),
            hide_hypervisor=azure, secure_boot=secure_boot, tpm_socket=tpm.socket if tpm else None,
            disk_controller=req.disk_controller,
        )

    @property
    def evidence_rel(self) -> str:
        """The evidence folder relative to the build folder (what records and messages name)."""
        return self.evidence.relative_to(self.request.build.path).as_posix()

    @property
    def agent(self) -> str:
        return self.request.build.manifest().agent.value

    # -- waiting -----------------------------------------------------------------------------
    def _note_serial(self) -> None:
        timings = self.timings
        if self.vm is None or timings.kernel_s is not None:
            return
        text, now = self.vm.serial(), self.vm.elapsed()
        if text and timings.first_serial_s is None:
            timings.first_serial_s = now
        if KERNEL_BANNER in text:
            timings.kernel_s = now

    def _platform_t(self, wall_time: str | None) -> float | None:
        if not wall_time:
            return None
        moment = datetime.fromisoformat(wall_time.replace("Z", "+00:00")).timestamp()
        return max(0.0, moment - self._qemu_wall_start)

    def wait_ready(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Block until the agent's Ready health report is accepted; fail fast on NotReady or a dead boot."""
        assert self.vm is not None and self.view is not None
        view = self.view
        limit = timeout_s or self.request.timeout_s

        def outcome() -> dict[str, Any] | None:
            self._note_serial()
            view.refresh()
            failure = view.failure()
            if failure:
                raise VerifyError(
                    f"the agent reported NotReady/ProvisioningFailed: {failure.get('description', '')[:400]}",
                    f"see {self.evidence_rel}/serial.log and platform-requests.jsonl in the build folder")
            deviations = view.deviations()
            if deviations:
                raise VerifyError(f"not provisioned: the guest's agent broke the Azure protocol: {deviations[0]}"
                                  + (f" (and {len(deviations) - 1} more)" if len(deviations) > 1 else ""),
                                  f"real Azure would not take this request; see {self.evidence_rel}/"
                                  "platform-events.jsonl and platform-requests.jsonl in the build folder")
            self._check_permanent_faults(view)
            self._check_silent_agent(view)
            return view.ready()

        ready = self.vm.wait(outcome, limit, "the agent's Ready report")
        assert isinstance(ready, dict)
        self._check_imds_usable(view)
        self.timings.ready_s = self._platform_t(ready.get("time"))
        imds = view.first_request("imds")
        goal = next((r for r in view.requests if "comp=goalstate" in str(r.get("path"))), None)
        self.timings.imds_first_s = self._platform_t(imds.get("time")) if imds else None
        self.timings.goalstate_first_s = self._platform_t(goal.get("time")) if goal else None
        return ready

    def _check_imds_usable(self, view: PlatformView) -> None:
        """Ready without a single good IMDS answer means the agent provisioned blind (image-checks C4)."""
        imds = [r for r in view.requests if r.get("server") == "imds"]
        if imds and not any(int(r.get("status") or 0) == 200 for r in imds):
            last = imds[-1]
            missing = ", ".join(last.get("missing_headers") or []) or "none"
            fault = f"; injected fault {last['fault']}" if last.get("fault") else ""
            raise VerifyError(f"IMDS answered all {len(imds)} requests of the agent with an error (last: "
                              f"{last.get('status')} {last.get('method')} {last.get('path')}; required headers the "
                              f"agent did not send: {missing}{fault})",
                              "the agent could not read its instance metadata; see platform-requests.jsonl")

    def _check_silent_agent(self, view: PlatformView) -> None:
        """Fail fast when the boot finished but no provisioning agent ever talked to the platform."""
        assert self.vm is not None
        if view.requests or not BOOT_FINISHED_RE.search(self.vm.serial()):
            self._login_seen_at = None
            return
        if self._login_seen_at is None:
            self._login_seen_at = self.vm.elapsed()
        elif self.vm.elapsed() - self._login_seen_at > self._silent_grace_s:
            raise VerifyError(
                f"the guest finished booting at {self._login_seen_at:.0f} s but no provisioning agent "
                f"contacted IMDS or the WireServer in the {self._silent_grace_s:.0f} s after it",
                "the image's cloud-init or waagent is missing, disabled or crashing; see the serial log")

    def _check_permanent_faults(self, view: PlatformView) -> None:
        """A fault injected 'always' that the agent keeps hitting ends the wait with the endpoint's name."""
        if not self._permanent:
            return
        for endpoint, count in view.faulted().items():
            server = endpoint.split(":", 1)[0]
            if count >= PERMANENT_FAULT_HITS and any(r.server == server for r in self._permanent):
                raise VerifyError(f"permanent fault: {endpoint} failed {count} requests and the agent never got "
                                  "its Ready through", f"faults injected: {', '.join(self.request.faults)}")

    def guest(self, timeout_s: float = 180) -> Guest:
        """Connect over SSH as the provisioned admin user (retrying while sshd comes up)."""
        assert self.vm is not None
        guest = Guest(self.ssh_socket, self.config.admin_username, self.key)
        guest.connect(timeout_s)
        self.timings.ssh_ready_s = self.vm.elapsed()
        self._stack.callback(guest.close)
        return guest

    # -- teardown ----------------------------------------------------------------------------
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.failed = True
        try:
            self._stack.close()
        finally:
            keep = self.request.keep == "always" or (self.request.keep == "on-error" and self.failed)
            if keep:
                log.warning("scratch folder kept: %s (overlay, OVMF vars, media, SSH key)", self.scratch)
            else:
                shutil.rmtree(self.scratch, ignore_errors=True)
            if self.sockets != self.scratch:  # a short folder of its own (see socket_dir): never kept
                shutil.rmtree(self.sockets, ignore_errors=True)
            if self._scratch_lock is not None:
                os.close(self._scratch_lock)  # a kept folder is stale from now: prune removes it after an hour
                self._scratch_lock = None

    @property
    def ssh_socket(self) -> Path:
        """The SSH bridge's socket (ProxyCommand target): one end outside the namespace, one inside."""
        return self.sockets / "ssh.sock"

    def ssh_command(self) -> str:
        """A command a person can paste to log in (for `harness boot`)."""
        proxy = f"{sys.executable} -m harness.helpers.sshproxy connect {self.ssh_socket}"
        return (f"ssh -i {self.key.private_path} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                f"-o ProxyCommand='{proxy}' {self.config.admin_username}@{self.config.hostname}")
