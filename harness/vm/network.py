"""An Azure-like network inside the VM's private namespace: a tap device and a real DHCP server.

The guest gets its address, gateway and DNS from dnsmasq, plus what Azure's DHCP sends and
QEMU's built-in DHCP cannot: option 245 (the WireServer address, forced because dhclient does
not ask for it) and classless static routes (option 121) to 168.63.129.16 and 169.254.169.254.
The fake services listen on those addresses inside the namespace; nothing routes out of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from harness import proc
from harness.errors import PlatformError
from harness.vm.netns import NetNamespace

WIRESERVER = "168.63.129.16"
IMDS = "169.254.169.254"
GATEWAY = "10.0.0.1"
GUEST_IP = "10.0.0.4"  # Azure hands out .4 as a subnet's first address
PREFIX = 24
TAP = "tap0"
DOMAIN = "internal.cloudapp.net"


@dataclass(frozen=True)
class NetworkPlan:
    mac: str
    hostname: str
    guest_ip: str = GUEST_IP
    gateway: str = GATEWAY
    azure_options: bool = True


def setup_commands(plan: NetworkPlan) -> list[list[str]]:
    """ip commands that create the tap and bind the magic addresses locally (pure, unit-tested)."""
    return [
        ["ip", "link", "set", "lo", "up"],
        ["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
        ["ip", "link", "set", TAP, "up"],
        ["ip", "addr", "add", f"{plan.gateway}/{PREFIX}", "dev", TAP],
        ["ip", "addr", "add", f"{WIRESERVER}/32", "dev", "lo"],
        ["ip", "addr", "add", f"{IMDS}/32", "dev", "lo"],
    ]


def dnsmasq_argv(plan: NetworkPlan, workdir: Path) -> list[str]:
    """dnsmasq as Azure's DHCP and DNS for one guest (pure, unit-tested)."""
    argv = [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-hosts", "--no-resolv",
        "--bind-interfaces", f"--listen-address={plan.gateway}", f"--listen-address={WIRESERVER}",
        "--user=root", "--group=root",
        f"--dhcp-range={plan.guest_ip},{plan.guest_ip},255.255.255.0,1h",
        f"--dhcp-host={plan.mac},{plan.guest_ip}",
        f"--dhcp-option=option:router,{plan.gateway}",
        f"--dhcp-option=option:dns-server,{WIRESERVER}",
        f"--dhcp-option=option:domain-name,{DOMAIN}",
        f"--host-record={plan.hostname}.{DOMAIN},{plan.hostname},{plan.guest_ip}",
        f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}",
        # Its own pid file: the default /run/dnsmasq.pid is shared by every namespace (and by a host
        # dnsmasq service), so two boots side by side would race for it.
        f"--pid-file={workdir / 'dnsmasq.pid'}",
        f"--log-facility={workdir / 'dnsmasq.log'}", "--log-dhcp",
    ]
    if plan.azure_options:
        argv += [
            f"--dhcp-option-force=245,{WIRESERVER}",
            # With option 121 present clients ignore option 3, so the default route is in it too.
            f"--dhcp-option-force=121,{WIRESERVER}/32,{plan.gateway},{IMDS}/32,{plan.gateway},"
            f"0.0.0.0/0,{plan.gateway}",
        ]
    return argv


class AzureNetwork:
    """Sets up the namespace's interfaces and runs dnsmasq for the life of one boot."""

    def __init__(self, ns: NetNamespace, plan: NetworkPlan, workdir: Path) -> None:
        self.ns = ns
        self.plan = plan
        self.workdir = workdir
        self.dnsmasq: proc.Process | None = None

    def __enter__(self) -> AzureNetwork:
        proc.require("ip", "dnsmasq")
        for argv in setup_commands(self.plan):
            self.ns.run(argv)
        self.dnsmasq = self.ns.spawn(dnsmasq_argv(self.plan, self.workdir), name="dnsmasq",
                                     stdout_path=self.workdir / "dnsmasq.out")
        time.sleep(0.2)
        if self.dnsmasq.poll() is not None:
            output = (self.workdir / "dnsmasq.out").read_text(errors="replace").strip()
            raise PlatformError(f"dnsmasq did not start: {output.splitlines()[-1] if output else 'no output'}",
                                "see dnsmasq.out in the evidence folder")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.dnsmasq is not None:
            self.dnsmasq.stop(grace_s=2)

    def leased(self) -> bool:
        """Whether the guest holds a lease (dnsmasq's lease file names its MAC)."""
        leases = self.workdir / "dnsmasq.leases"
        return leases.exists() and self.plan.mac.lower() in leases.read_text().lower()
