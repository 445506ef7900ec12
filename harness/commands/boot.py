"""`harness boot BUILD`: boot a build on the fake platform for a person to debug, until interrupted."""

from __future__ import annotations

import argparse
import json
import sys
import time

from harness.buildfolder import resolve
from harness.commands._args import add_boot_arguments
from harness.enums import Firmware, KeepPolicy, Platform, values


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("boot", help="boot a build on the fake Azure platform and keep it for debugging",
                       description="Boot an overlay of the build (the build is never written), print an SSH "
                                   "command, stream the serial console, and stop on Ctrl-C.")
    p.add_argument("build", help="build folder or RECIPE[@BUILD_ID|@latest]")
    p.add_argument("--firmware", choices=values(Firmware), default=Firmware.BIOS.value,
                   help="bios = SeaBIOS (Gen1, default) or uefi = OVMF (Gen2)")
    p.add_argument("--platform", choices=values(Platform), default=Platform.AZURE.value,
                   help="the fake Azure platform (default) or a cloud-init NoCloud seed")
    p.add_argument("--console", choices=["stream", "file"], default="stream",
                   help="stream the serial console here (default) or only save it to the evidence folder")
    add_boot_arguments(p)
    p.set_defaults(func=run)


def _follow(path_text: str, offset: int) -> int:
    """Print what the serial log gained since offset; return the new offset."""
    with open(path_text, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    if data:
        sys.stdout.write(data.decode(errors="replace"))
        sys.stdout.flush()
    return offset + len(data)


def run(args: argparse.Namespace) -> int:
    from harness.verify.boot import BootRequest, BootSession
    from harness.verify.prepare import choose_accel

    build = resolve(args.build)
    accel = choose_accel(build, args.accel)
    request = BootRequest(build=build, firmware=Firmware(args.firmware), platform=Platform(args.platform),
                          accel=accel, keep=KeepPolicy(args.keep), faults=tuple(args.fault),
                          timeout_s=args.timeout_s or 600.0)
    session = BootSession(request)
    with session:
        assert session.vm is not None
        serial = str(session.vm.spec.serial_log)
        print(f"booting {build.path} ({args.firmware}, {args.platform}, {accel.accel}); "
              f"serial console: {serial}", file=sys.stderr)
        print(f"log in (once provisioned) with:\n  {session.ssh_command()}", file=sys.stderr)
        if session.ns is not None:
            print(f"or enter the VM's network namespace: {session.ns.shell_hint()} "
                  f"ssh -i {session.key.private_path} {session.config.admin_username}@10.0.0.4", file=sys.stderr)
        offset = 0
        try:
            while session.vm.alive():
                if args.console == "stream":
                    offset = _follow(serial, offset)
                time.sleep(0.5)
            print("\nQEMU exited", file=sys.stderr)
        except KeyboardInterrupt:
            print("\nstopping the VM", file=sys.stderr)
        finally:
            if session.view is not None:
                session.view.refresh()
                print("platform request log:", file=sys.stderr)
                for item in session.view.requests:
                    print(json.dumps({k: item.get(k) for k in ("t_s", "server", "client", "method", "path", "status",
                                                                "fault")}), file=sys.stderr)
    return 0
