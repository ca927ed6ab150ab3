"""Every benchmark in one command: python bench/run_all.py (about 10 minutes on 2 cores).

Each script measures diagnose and its baseline in the same run and prints the ratio; see bench/README.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = ("bench_startup.py", "bench_logs.py", "bench_plot.py", "bench_eval.py", "bench_predictions.py")


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for script in SCRIPTS:
        print(f"\n## {script}", flush=True)
        if subprocess.run([sys.executable, str(here / script)]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
