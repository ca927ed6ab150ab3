"""Start-up: `diagnose --help` and `diagnose curves` on a small log, against `python -c pass`.

    python bench/bench_startup.py [--repeat 7]

Target: `diagnose --help` <= 0.3 s; `diagnose curves` never imports torch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, median_time  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    compile_package()
    py = sys.executable

    def run(*cmd: str) -> None:
        subprocess.run([py, *cmd], check=True, capture_output=True)

    log = str(ROOT / "fixtures" / "runs" / "healthy.keras.csv")
    rows = [
        ("python -c pass", median_time(lambda: run("-c", "pass"), args.repeat)),
        ("python -c 'import typer'", median_time(lambda: run("-c", "import typer"), args.repeat)),
        ("diagnose --help", median_time(lambda: run("-m", "diagnose", "--help"), args.repeat)),
        ("diagnose curves --help", median_time(lambda: run("-m", "diagnose", "curves", "--help"), args.repeat)),
        ("diagnose curves <30-epoch CSV> --no-plot", median_time(lambda: run("-m", "diagnose", "curves", log, "--no-plot"), args.repeat)),
    ]
    probe = (
        "import sys\nfrom typer.testing import CliRunner\nfrom diagnose.cli import app\n"
        f"r = CliRunner().invoke(app, ['curves', {log!r}, '--no-plot'])\nassert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules)"
    )
    torch_loaded = subprocess.run([py, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    print("| command | median s |\n|---|---|")
    for name, t in rows:
        print(f"| `{name}` | {t:.2f} |")
    print(f"\n`diagnose curves` imports torch: {torch_loaded}; target: `diagnose --help` <= 0.3 s")


if __name__ == "__main__":
    main()
