"""VM configurations in Azure's words (generation, security type, disk controller) and the boots that prove
what a recipe declares.

Trusted Launch and NVMe exist only on Gen2 (uefi). With no configuration asked for, verify plans one boot per
firmware and adds boots until every declared value was booted at least once, preferring the configurations
Azure creates by default today (a Gen2 VM is Trusted Launch; v6 sizes attach NVMe): for a recipe declaring
V1, V2, standard, trusted-launch, scsi and nvme that is bios-standard-scsi and uefi-trusted-launch-nvme.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

from harness.enums import DiskController, Firmware, SecurityType

GEN2_ONLY: frozenset[str] = frozenset({SecurityType.TRUSTED_LAUNCH, DiskController.NVME})


@dataclass(frozen=True, order=True)
class VmConfiguration:
    firmware: Firmware
    security_type: SecurityType = SecurityType.STANDARD
    disk_controller: DiskController = DiskController.SCSI

    @property
    def name(self) -> str:
        """bios, uefi-trusted-launch, uefi-trusted-launch-nvme ...: the defaults (standard, scsi) are left out."""
        parts = [self.firmware.value]
        if self.security_type is not SecurityType.STANDARD:
            parts.append(self.security_type.value)
        if self.disk_controller is not DiskController.SCSI:
            parts.append(self.disk_controller.value)
        return "-".join(parts)

    @property
    def valid(self) -> bool:
        """Trusted Launch and NVMe are Gen2 (uefi) only, as on Azure."""
        return self.firmware is Firmware.UEFI or not ({self.security_type, self.disk_controller} & GEN2_ONLY)


def explicit(firmwares: Sequence[Firmware], security_types: Sequence[SecurityType],
             controllers: Sequence[DiskController]) -> list[VmConfiguration]:
    """Every valid combination of what was asked for (invalid ones, e.g. bios + trusted-launch, are dropped)."""
    wanted = [VmConfiguration(f, s, c) for f, s, c in product(firmwares, security_types, controllers)]
    return [c for c in wanted if c.valid]


def _best(firmware: Firmware, security_types: Sequence[SecurityType], controllers: Sequence[DiskController],
          covered: set[str]) -> VmConfiguration | None:
    """The valid configuration of this firmware covering most declared values not covered yet (Azure's current
    default first: trusted-launch over standard, nvme over scsi)."""
    options = [VmConfiguration(firmware, s, c) for s in reversed(security_types) for c in reversed(controllers)]
    options = [o for o in options if o.valid]
    if not options:
        return None
    return max(options, key=lambda o: len({o.security_type, o.disk_controller} - covered))


def plan(firmwares: Sequence[Firmware], security_types: Sequence[SecurityType],
         controllers: Sequence[DiskController]) -> list[VmConfiguration]:
    """Few boots that boot every firmware and every declared security type and disk controller at least once."""
    boots: list[VmConfiguration] = []
    covered: set[str] = set()
    for firmware in firmwares:
        best = _best(firmware, security_types, controllers, covered)
        if best is not None:
            boots.append(best)
            covered |= {best.security_type, best.disk_controller}
    needed = set(security_types) | set(controllers)
    while needed - covered:
        extra = [_best(f, security_types, controllers, covered) for f in reversed(firmwares)]
        gains = [(len({c.security_type, c.disk_controller} - covered), c) for c in extra if c is not None]
        gain, best = max(gains, key=lambda g: g[0], default=(0, None))
        if not gain or best is None or best in boots:
            break  # a declared value no firmware of this image can boot (e.g. trusted-launch on a V1-only image)
        boots.append(best)
        covered |= {best.security_type, best.disk_controller}
    return boots
