"""`make bench`: run every benchmark module (bench/*_bench.py) and print its figures.

Each module exposes `run() -> dict[str, object]`; figures are printed and saved to
bench/results/latest.json so a closing note can quote them with the command that made them.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

from harness import log

HERE = Path(__file__).resolve().parent


def host_speed_s() -> float:
    """Seconds for a fixed pure-Python loop on one host core: the same benchmark on a shared or throttled host
    can take far longer, and this figure, taken before and after each benchmark, shows when that happened."""
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.perf_counter() - start, 2)


def main(argv: list[str]) -> int:
    log.setup()  # the harness's progress lines, secrets masked, third-party noise off
    names = argv or sorted(p.stem for p in HERE.glob("*_bench.py"))
    results: dict[str, object] = {}
    failed = False
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}", flush=True)
        speed_before = host_speed_s()
        start = time.monotonic()
        try:
            figures = module.run()
        except Exception as exc:  # a failing benchmark is reported, the others still run
            failed = True
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        figures["wall_s"] = round(time.monotonic() - start, 1)
        figures["host_loop_s"] = {"before": speed_before, "after": host_speed_s()}
        results[name] = figures
        print(json.dumps(figures, indent=2), flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
