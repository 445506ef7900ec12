"""The Azure-like network: interface commands and dnsmasq options, exactly."""

from __future__ import annotations

from pathlib import Path

from harness.vm.network import NetworkPlan, dnsmasq_argv, setup_commands


def test_setup_binds_magic_addresses_locally() -> None:
    commands = setup_commands(NetworkPlan(mac="52:54:00:12:34:56", hostname="vm1"))
    assert ["ip", "addr", "add", "168.63.129.16/32", "dev", "lo"] in commands
    assert ["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"] in commands
    assert ["ip", "addr", "add", "10.0.0.1/24", "dev", "tap0"] in commands
    # nothing routes out of the namespace: no default route is ever added
    assert not any("route" in c for c in commands)


def test_dnsmasq_sends_option_245_and_classless_routes() -> None:
    argv = dnsmasq_argv(NetworkPlan(mac="52:54:00:12:34:56", hostname="vm1"), Path("/w"))
    assert "--dhcp-option-force=245,168.63.129.16" in argv
    assert ("--dhcp-option-force=121,168.63.129.16/32,10.0.0.1,169.254.169.254/32,10.0.0.1,0.0.0.0/0,10.0.0.1"
            in argv)
    assert "--dhcp-host=52:54:00:12:34:56,10.0.0.4" in argv
    assert "--no-resolv" in argv and "--dhcp-leasefile=/w/dnsmasq.leases" in argv
    assert "--pid-file=/w/dnsmasq.pid" in argv  # never the shared default, which parallel boots race for


def test_nocloud_network_has_no_azure_options() -> None:
    argv = dnsmasq_argv(NetworkPlan(mac="52:54:00:12:34:56", hostname="vm1", azure_options=False), Path("/w"))
    assert not any(a.startswith("--dhcp-option-force=245") for a in argv)
