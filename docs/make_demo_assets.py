"""Print the demo report to PDF and take its screenshots, for the docs.

Run from the repository's root with Chromium installed (Debian: ``apt-get install -y chromium
poppler-utils``, as ``.ci/run`` does)::

    .venv/bin/python docs/make_demo_assets.py

It runs the flagship example (``examples/city_partnership.py``, what ``make demo`` runs) and
writes into ``docs/_static/demo/``:

- ``report.pdf``: the report printed to A4 by headless Chromium, as a reader's browser prints it;
- ``desktop.png``: the top of the report in a 1,200 px wide window;
- ``phone.png``: the top of the report on a 390 px wide phone screen.

The files are committed; ``tests/test_browser.py`` prints the report again and fails when the
words of the committed PDF are not those of today's report (rerun this script then).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_static" / "demo"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium(*args: str, profile: Path) -> None:
    """Run headless Chromium once; stop with its error output on failure."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    command = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])


def demo_report(folder: Path) -> Path:
    """The flagship example's report.html, written into ``folder``."""
    example = ROOT / "examples" / "city_partnership.py"
    env = dict(os.environ, MPLBACKEND="Agg")
    subprocess.run([sys.executable, str(example), "--out", str(folder)], check=True, env=env)
    return folder / "report.html"


def print_pdf(html: Path, pdf: Path, profile: Path) -> None:
    chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri(), profile=profile)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        html = demo_report(tmp / "demo")
        print_pdf(html, OUT / "report.pdf", tmp / "profile")
        for name, size in (("desktop.png", "1200,1500"), ("phone.png", "390,844")):
            chromium(
                f"--window-size={size}",
                f"--screenshot={OUT / name}",
                html.as_uri(),
                profile=tmp / "profile",
            )
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
