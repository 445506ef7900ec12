"""Fake Azure platform (IMDS, WireServer, HostGAPlugin), provisioning media and NoCloud seed, in pure Python."""

from harness.platform.config import PlatformConfig, qemu_smbios_args, vm_id_for
from harness.platform.faults import FaultAction, FaultRule, FaultSet
from harness.platform.nocloud import nocloud_user_data, seed_iso
from harness.platform.ovf import ovf_env_xml, provisioning_udf
from harness.platform.servers import AZURE_BINDS, LOOPBACK_BINDS, FakeAzure, ReadyResult

__all__ = [
    "AZURE_BINDS",
    "LOOPBACK_BINDS",
    "FakeAzure",
    "FaultAction",
    "FaultRule",
    "FaultSet",
    "PlatformConfig",
    "ReadyResult",
    "nocloud_user_data",
    "ovf_env_xml",
    "provisioning_udf",
    "qemu_smbios_args",
    "seed_iso",
    "vm_id_for",
]
