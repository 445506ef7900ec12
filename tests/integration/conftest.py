"""Session fixtures shared by several integration modules (each boot is minutes under TCG)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import pytest

from harness.buildfolder import MANIFEST, RAW, VHD, BuildFolder, write_json_atomic
from harness.digest import sparse_copy
from harness.enums import Stage
from harness.manifest import DiskStamp
from harness.results import StageReport, load_stage
from harness.sbom import SBOM_FILE
from harness.stages.pipeline import RunReport
from tests.conftest import TEST_BUILDS, build_recipe
from tests.integration.pipeline_fixtures import run_harness
from tests.integration.plant import rehash, strip_secure_boot_chain


@pytest.fixture(scope="session")
def e2e_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh builds folder and gallery: the e2e run starts from nothing (the apt cache stays warm)."""
    root = Path(__file__).resolve().parents[2] / ".test-builds" / "e2e"
    root.mkdir(parents=True, exist_ok=True)
    builds = Path(tempfile.mkdtemp(prefix="run-", dir=root))  # never an earlier run's folder
    return {"builds": builds, "gallery": tmp_path_factory.mktemp("e2e-gallery")}


@pytest.fixture(scope="session")
def e2e_first_run(e2e_dirs: dict[str, Path]) -> RunReport:
    """`harness run debian-12` with every stage and both firmwares, once for the session."""
    return run_harness(e2e_dirs)


@pytest.fixture(scope="session")
def debian12_verified(e2e_first_run: RunReport) -> StageReport:
    """debian-12 verified under SeaBIOS and OVMF: the e2e run's verify stage (shared, not repeated)."""
    assert e2e_first_run.build is not None
    report = load_stage(e2e_first_run.build, Stage.VERIFY)
    assert report is not None
    report.build = e2e_first_run.build
    return report


def _session_runs_e2e(session: pytest.Session) -> bool:
    return any("e2e_first_run" in getattr(item, "fixturenames", ()) for item in session.items)


def raw_build_from(converted: BuildFolder, root: Path) -> BuildFolder:
    """The build folder as the build left it (before convert): the VHD's data part back as disk.raw, the
    manifest without its VHD record. Convert only appended a footer, so the content digest is unchanged."""
    dest = root / converted.recipe_name / converted.build_id
    if dest.exists():
        return BuildFolder(dest)
    manifest = converted.manifest()
    staging = root / converted.recipe_name / f".tmp-copy-{converted.build_id}"
    staging.mkdir(parents=True)
    sparse_copy(converted.path / VHD, staging / RAW, manifest.disk.size_bytes)
    disk = dataclasses.replace(manifest.disk, file=RAW, stamp=DiskStamp.of(staging / RAW))
    write_json_atomic(staging / MANIFEST, manifest.replace(vhd=None, disk=disk).to_json())
    if (converted.path / SBOM_FILE).exists():  # written by the build, as the manifest records it
        shutil.copy2(converted.path / SBOM_FILE, staging / SBOM_FILE)
    staging.rename(dest)
    return BuildFolder(dest)


@pytest.fixture(scope="session")
def debian12_build(request: pytest.FixtureRequest) -> BuildFolder:
    """The debian-12 build every test shares (read-only: copy before mutating). When the session runs the e2e
    test, it is the build that `harness run` made there (cold), as it was before convert: debian-12 is built once
    per session instead of twice. Otherwise (a focused run) it is built here."""
    if not _session_runs_e2e(request.session):
        return build_recipe("debian-12")
    run: RunReport = request.getfixturevalue("e2e_first_run")
    assert run.build is not None and run.passed, f"the e2e run failed: {run.error}"
    return raw_build_from(run.build, TEST_BUILDS)


# A user's own checks for `harness verify --tests`: three pass, one fails on purpose.
USER_TESTS = '''
def test_my_package_is_there(ssh):
    result = ssh.run("dpkg-query -W openssh-server")
    assert result.exit_code == 0, result.describe()

def test_my_user_is_not_root(ssh):
    assert ssh.run("id -u").stdout.strip() != "0"

def test_agent_said_ready(azure_platform, harness_build):
    assert azure_platform.ready is not None
    assert azure_platform.ready["state"] == "Ready"
    assert harness_build.manifest().recipe == "debian-12"

def test_a_user_check_that_fails(ssh):
    assert ssh.run("test -e /etc/no-such-file").exit_code == 0
'''


@dataclasses.dataclass(frozen=True)
class UnsignedGen2Run:
    build: BuildFolder
    exit_code: int
    report: StageReport


@pytest.fixture(scope="session")
def unsigned_gen2(debian12_build: BuildFolder, tmp_path_factory: pytest.TempPathFactory) -> UnsignedGen2Run:
    """`harness verify COPY --firmware uefi --tests DIR` on a copy of debian-12 whose shim and GRUB lost their
    signatures (declared standard-only). One standard Gen2 boot (Secure Boot off) serves two proofs that cost minutes
    of TCG each: the stripped chain still boots and passes every built-in check (the control of the Trusted Launch
    refusal, test_verify.py), and the user's checks run inside verify and gate publish (test_pytest_plugin.py)."""
    from harness.cli import main
    from tests.conftest import copy_build

    root = tmp_path_factory.mktemp("unsigned-gen2")
    build = copy_build(debian12_build, root / "builds")
    strip_secure_boot_chain(build)
    # as a recipe declaring security_types = ["standard"] would record it: a Gen2 image that never boots with Secure
    # Boot needs no signed chain (check A18), so `check` passes and only the user's failing test gates publish
    with build.locked():
        build.write_manifest(build.manifest().replace(security_types=("standard",)))
    rehash(build)
    tests = root / "site-checks"
    tests.mkdir()
    (tests / "test_my_image.py").write_text(USER_TESTS, encoding="utf-8")
    code = main(["verify", str(build.path), "--firmware", "uefi", "--tests", str(tests), "--json"])
    report = load_stage(build, Stage.VERIFY)
    assert report is not None, f"verify wrote no stage file (exit {code})"
    return UnsignedGen2Run(build, code, report)
