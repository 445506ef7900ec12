"""Fixed VHD files: the footer (footer.py), conversion in place and Azure's rules (rules.py)."""

from harness.vhd.footer import Footer, describe
from harness.vhd.rules import (
    Problem,
    RuleResult,
    check,
    is_fixed_vhd,
    qemu_size,
    read_footer,
    to_fixed_vhd,
    validate,
)

__all__ = ["Footer", "Problem", "RuleResult", "check", "describe", "is_fixed_vhd", "qemu_size", "read_footer",
           "to_fixed_vhd", "validate"]
