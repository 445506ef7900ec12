"""Per-family behaviour as data: paths, tools and conventions that differ between apt, dnf and zypper.

Code varies by family, never by distro name; a recipe names its family.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.builder.efichain import SignedChain
from harness.enums import Family
from harness.errors import HarnessError
from harness.recipe import Setting


@dataclass(frozen=True)
class FamilyTraits:
    """What the build and the audit need to know about a package-manager family."""

    name: Family
    grub_dir: str  # GRUB's directory on /boot, holding grub.cfg and the module folders
    grub_lib: str  # where the target keeps GRUB's platform folders (i386-pc, x86_64-efi)
    grub_mkimage: str
    grub_default: str  # the distro's GRUB defaults file, read by its grub-mkconfig
    cmdline_key: str
    initramfs_tool: str  # host tool listing an initramfs
    initramfs_glob: str  # initramfs names under /boot, '{v}' = kernel version
    kernel_glob: str
    machine_id: str  # 'empty' or 'uninitialized' on purpose, see image-checks D3
    ssh_service: str
    dhcp_lease_dirs: tuple[str, ...]
    package_db: str
    initramfs_modules_file: str
    initramfs_modules_style: str  # 'line': one module per line; 'dracut': an add_drivers drop-in
    # The shell functions the customization boot of a vendor image runs (harness/distros/<this>, builder/customize.py).
    customize_snippet: str = ""
    # rpm families: where the host's rpm writes the target's database during the bootstrap, and the backend
    # the target's own rpm reads (the host writes sqlite; see zypper.py for the hand-over).
    rpm_dbpath: str = ""
    rpmdb_backend: str = ""
    # dnf: kernel-install reads the kernel command line for new BLS entries from this file (never /proc/cmdline
    # of the build host); empty where GRUB's defaults file is the only source.
    kernel_cmdline_file: str = ""
    # 'menuentry': a static entry for the kernel (grub-mkconfig style); 'blscfg': GRUB reads /boot/loader/entries,
    # so kernels installed later in the guest boot without regenerating grub.cfg.
    grub_cfg_style: str = "menuentry"
    # Where the family's packages put shim (signed with Microsoft's UEFI CA), its signed GRUB and MokManager: the
    # Secure Boot chain the ESP gets when the image has them (builder/efichain.py).
    signed_chain: SignedChain | None = None

    def cmdline_setting(self, cmdline: str) -> Setting:
        return Setting(
            file=self.grub_default, key=self.cmdline_key, value=cmdline, style="shell",
            reason="kernel.cmdline from the recipe: serial console and NIC naming Azure needs (image-checks A9)")

    def initramfs_settings(self, modules: tuple[str, ...]) -> list[Setting]:
        reason = "Hyper-V storage and network drivers must be in the initramfs to find the root disk on Azure (A6)"
        if not modules:
            return []
        if self.initramfs_modules_style == "line":
            return [Setting(file=self.initramfs_modules_file, value=m, style="line", reason=reason)
                    for m in modules]
        return [Setting(file=self.initramfs_modules_file,
                        value=f'add_drivers+=" {" ".join(modules)} "\n', style="file", reason=reason)]


APT = FamilyTraits(
    name=Family.APT,
    grub_dir="/boot/grub",
    grub_lib="/usr/lib/grub",
    grub_mkimage="grub-mkimage",
    grub_default="/etc/default/grub",
    cmdline_key="GRUB_CMDLINE_LINUX",
    initramfs_tool="lsinitramfs",
    initramfs_glob="initrd.img-{v}",
    kernel_glob="vmlinuz-*",
    # Empty, not 'uninitialized': with 'uninitialized' systemd treats the boot as a first boot and
    # runs `preset-all`, which could flip units the build enabled or disabled on purpose.
    machine_id="empty",
    ssh_service="ssh.service",
    dhcp_lease_dirs=("/var/lib/dhcp", "/var/lib/dhclient", "/var/lib/dhcpcd", "/var/lib/NetworkManager",
                     "/run/systemd/netif/leases"),
    package_db="/var/lib/dpkg",
    initramfs_modules_file="/etc/initramfs-tools/modules",
    initramfs_modules_style="line",
    customize_snippet="apt/customize.sh",
    # shim-signed (Debian: .signed; Ubuntu: .signed.latest), grub-efi-amd64-signed, shim-helpers-amd64-signed
    signed_chain=SignedChain(shim=("/usr/lib/shim/shimx64.efi.signed", "/usr/lib/shim/shimx64.efi.signed.latest"),
                             grub=("/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",),
                             mok_manager=("/usr/lib/shim/mmx64.efi.signed", "/usr/lib/shim/mmx64.efi")),
)

DNF = FamilyTraits(
    name=Family.DNF,
    grub_dir="/boot/grub2",
    grub_lib="/usr/lib/grub",
    grub_mkimage="grub2-mkimage",
    grub_default="/etc/default/grub",
    cmdline_key="GRUB_CMDLINE_LINUX",
    initramfs_tool="lsinitrd",
    initramfs_glob="initramfs-{v}.img",
    kernel_glob="vmlinuz-*",
    machine_id="uninitialized",
    ssh_service="sshd.service",
    dhcp_lease_dirs=("/var/lib/dhclient", "/var/lib/NetworkManager"),
    package_db="/var/lib/rpm",
    initramfs_modules_file="/etc/dracut.conf.d/50-azure-hyperv.conf",
    initramfs_modules_style="dracut",
    customize_snippet="dnf/customize.sh",
    rpm_dbpath="/var/lib/rpm",
    rpmdb_backend="sqlite",
    kernel_cmdline_file="/etc/kernel/cmdline",
    grub_cfg_style="blscfg",
    # shim-x64 and grub2-efi-x64 install into the ESP's mount point, /boot/efi/EFI/<vendor>/
    signed_chain=SignedChain(shim=("/boot/efi/EFI/*/shimx64.efi",), grub=("/boot/efi/EFI/*/grubx64.efi",),
                             mok_manager=("/boot/efi/EFI/*/mmx64.efi",)),
)

ZYPPER = FamilyTraits(
    name=Family.ZYPPER,
    grub_dir="/boot/grub2",
    grub_lib="/usr/share/grub2",
    grub_mkimage="grub2-mkimage",
    grub_default="/etc/default/grub",
    cmdline_key="GRUB_CMDLINE_LINUX_DEFAULT",
    initramfs_tool="lsinitrd",
    initramfs_glob="initrd-{v}",
    kernel_glob="vmlinuz-*",
    machine_id="uninitialized",
    ssh_service="sshd.service",
    dhcp_lease_dirs=("/var/lib/dhcp", "/var/lib/wicked", "/var/lib/NetworkManager"),
    package_db="/var/lib/rpm",
    initramfs_modules_file="/etc/dracut.conf.d/50-azure-hyperv.conf",
    initramfs_modules_style="dracut",
    customize_snippet="zypper/customize.sh",
    # SUSE 15 keeps the database in /usr/lib/sysimage/rpm (/var/lib/rpm links there) and its rpm has no sqlite.
    rpm_dbpath="/usr/lib/sysimage/rpm",
    rpmdb_backend="ndb",
    # shim and grub2-x86_64-efi keep their signed binaries here (shim-install copies them to the ESP)
    signed_chain=SignedChain(shim=("/usr/share/efi/x86_64/shim.efi",), grub=("/usr/share/efi/x86_64/grub.efi",),
                             mok_manager=("/usr/share/efi/x86_64/MokManager.efi",)),
)

FAMILIES: dict[str, FamilyTraits] = {f.name: f for f in (APT, DNF, ZYPPER)}


def get(name: str) -> FamilyTraits:
    try:
        return FAMILIES[name]
    except KeyError:
        raise HarnessError(f"family {name!r} has no package bootstrap",
                           f"families with one: {', '.join(FAMILIES)}") from None
