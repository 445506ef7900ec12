"""apt family: root file system from the distro archive with mmdebstrap, archive probe, package list."""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import tempfile
from pathlib import Path

from harness import proc
from harness.builder.context import BuildContext
from harness.builder.guestroot import GuestRoot
from harness.builder.packages import package_set
from harness.builder.settings import apply_to_text
from harness.errors import BuildError, CommandError
from harness.progress import LineProgress
from harness.recipe import DISTROS_DIR

log = logging.getLogger(__name__)

BOOTSTRAP_TIMEOUT_S = 1800
PROBE_TIMEOUT_S = 120


def mmdebstrap_mode() -> str:
    """root mode when running as root; unshare mode (user namespaces) otherwise."""
    return "root" if os.geteuid() == 0 else "unshare"


def keyring_path(ctx: BuildContext) -> Path | None:
    keyring = ctx.recipe.source.keyring
    if not keyring:
        return None
    path = Path(keyring) if Path(keyring).is_absolute() else ctx.recipe.path.parent / keyring
    if not path.exists():
        alt = DISTROS_DIR / keyring  # a user recipe that extends a built-in one uses its keyring
        if alt.exists():
            return alt
        raise BuildError(f"keyring {keyring} named by recipe {ctx.recipe.name} does not exist",
                         "put the archive's public key next to the recipe or fix source.keyring")
    return path


def _common_args(ctx: BuildContext) -> list[str]:
    args = [f"--mode={mmdebstrap_mode()}", f"--components={','.join(ctx.recipe.source.components)}",
            '--aptopt=Acquire::Retries "3"']
    keyring = keyring_path(ctx)
    if keyring:
        args.append(f"--keyring={keyring}")
    return args


def _suite_and_mirror(ctx: BuildContext) -> list[str]:
    # No mirror argument: mmdebstrap picks the archive's own default for the suite.
    return [ctx.recipe.release] + ([ctx.mirror] if ctx.mirror else [])


def initramfs_modules_text(ctx: BuildContext) -> str:
    """/etc/initramfs-tools/modules as the image will carry it, written before the kernel installs."""
    text = "# List of modules to include in the initramfs (initramfs-tools(7)).\n"
    for setting in ctx.settings:
        if setting.file == "/etc/initramfs-tools/modules":
            text = apply_to_text(text, setting)
    return text


def mmdebstrap_argv(ctx: BuildContext, target: Path, apt_cache: Path, modules_file: Path) -> list[str]:
    """The full bootstrap command (pure given the context; shown by `harness build --plan`)."""
    include, exclude = package_set(ctx)
    argv = ["mmdebstrap", *_common_args(ctx), "--variant=apt", "--format=directory",
            f"--include={','.join(include)}",
            # our /etc/initramfs-tools/modules is in place before the kernel package: keep it
            "--dpkgopt=force-confold", "--dpkgopt=force-confdef",
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
            f"--setup-hook=sync-in {apt_cache} /var/cache/apt/archives/",
            '--essential-hook=mkdir -p "$1"/etc/initramfs-tools',
            f"--essential-hook=upload {modules_file} /etc/initramfs-tools/modules"]
    if exclude:
        quoted = " ".join(shlex.quote(p) for p in exclude)
        argv.append(f'--customize-hook=chroot "$1" sh -c "apt-get -y purge {quoted} >/dev/null 2>&1 || true"')
    argv.append(f"--customize-hook=sync-out /var/cache/apt/archives {apt_cache}")
    argv += [*_suite_and_mirror(ctx), str(target)]
    return argv


def bootstrap(ctx: BuildContext) -> None:
    """Install the root file system into ctx.rootfs (downloads cached under the cache folder)."""
    apt_cache = ctx.cache_dir / "apt" / ctx.recipe.release
    apt_cache.mkdir(parents=True, exist_ok=True)
    modules_file = ctx.work_dir / "initramfs-modules"
    modules_file.write_text(initramfs_modules_text(ctx), encoding="utf-8")
    argv = mmdebstrap_argv(ctx, ctx.rootfs, apt_cache, modules_file)
    progress = LineProgress("bootstrap", total_hint=0)
    with progress:
        try:
            proc.stream(argv, on_line=progress.feed_mmdebstrap, timeout_s=BOOTSTRAP_TIMEOUT_S,
                       log_path=ctx.work_dir / "bootstrap.log",
                       hint=f"see {ctx.work_dir / 'bootstrap.log'}; check the package names in the recipe "
                            "and that the archive is reachable")
        except CommandError as exc:
            raise _explain(exc, ctx) from exc


def _explain(exc: CommandError, ctx: BuildContext) -> CommandError:
    """Turn the usual archive failures into an actionable one-liner."""
    tail = exc.output_tail
    if "has no installation candidate" in tail or "Unable to locate package" in tail:
        exc.hint = f"a package in recipe {ctx.recipe.name} does not exist in {ctx.recipe.release}; fix [packages]"
    elif "Could not resolve" in tail or "Failed to fetch" in tail or "Temporary failure" in tail:
        exc.hint = (f"the package archive for {ctx.recipe.release} is unreachable from this machine; "
                    "recipe needs network access to it (or pass --mirror)")
    elif "NO_PUBKEY" in tail or "not signed" in tail:
        exc.hint = "the archive signature cannot be checked; set source.keyring in the recipe"
    return exc


def probe_archive(ctx: BuildContext) -> dict[str, str]:
    """sha256 of each suite's InRelease/Release as mmdebstrap's default sources fetch them today.

    Part of the cache key, so a nightly build picks up archive updates. Costs one small index
    download (a few seconds), with the same mirror selection as the real build.
    """
    with tempfile.TemporaryDirectory(prefix="harness-probe-") as tmp:
        out = Path(tmp) / "lists"
        out.mkdir()
        argv = ["mmdebstrap", *_common_args(ctx), "--variant=extract", "--include=base-files",
                "--format=null", "--skip=download/empty",
                f'--extract-hook=cp "$1"/var/lib/apt/lists/*Release {out}/',
                *_suite_and_mirror(ctx), "/dev/null"]
        try:
            proc.run(argv, timeout_s=PROBE_TIMEOUT_S)
        except CommandError as exc:
            raise _explain(exc, ctx) from exc
        digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
    if not digests:
        raise BuildError(f"the archive probe for {ctx.recipe.release} returned no Release files",
                         "check the recipe's release and mirror")
    return digests


# One line per package: status, name, version, architecture, maintainer, source package and its version.
# "ii \tbash\t5.2.15-2+b7\tamd64\tMatthias Klose <doko@debian.org>\tbash\t5.2.15-2"
_DPKG_FIELDS = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${Maintainer}\t${source:Package}\t" \
               "${source:Version}\n"
COPYRIGHT_HEAD_BYTES = 16384  # the header paragraph of a machine-readable copyright file is far shorter


def installed_packages(rootfs: Path) -> list[dict[str, str]]:
    """Every installed package with its version, maintainer, source package and declared licence (for the SBOM),
    read from the target's dpkg database and /usr/share/doc/PKG/copyright."""
    result = proc.run(["dpkg-query", f"--admindir={rootfs / 'var/lib/dpkg'}", "-W", f"-f={_DPKG_FIELDS}"])
    tree = GuestRoot(rootfs)
    packages = []
    for line in result.stdout.splitlines():
        status, name, version, arch, maintainer, source, source_version = line.split("\t")
        if status.startswith("ii"):
            packages.append({"name": name, "version": version, "arch": arch, "maintainer": maintainer,
                             "source_name": source, "source_version": source_version,
                             "license": copyright_license(tree, name)})
    return packages


def copyright_license(tree: GuestRoot, package: str) -> str:
    """The `License:` of the header paragraph of a machine-readable (DEP-5) /usr/share/doc/PKG/copyright, or ''.

    Only the first paragraph is read: a licence there covers the whole package; the per-file ones that follow
    do not say what the package as a whole is under.
    """
    try:
        with tree.path(f"/usr/share/doc/{package}/copyright").open("rb") as handle:
            head = handle.read(COPYRIGHT_HEAD_BYTES).decode("utf-8", errors="replace")
    except (OSError, BuildError):  # no copyright file, not a file, a symlink loop: nothing declared
        return ""
    fields = header_fields(head)
    return fields.get("license", "") if "format" in fields else ""


def header_fields(text: str) -> dict[str, str]:
    """First-line values of the first paragraph of a deb822 text, keys lower-cased ('Format: https://...')."""
    fields: dict[str, str] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" or ":" not in line:
            continue  # a continuation line (licence text) or not a field
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return fields
