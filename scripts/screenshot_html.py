"""Open an attention page in headless Chromium (Debian's `chromium` package) and save a screenshot.

    python scripts/screenshot_html.py results/attention/task2.html results/attention/task2-browser.png

Proves the page renders in a real browser; the test suite runs it when Chromium is installed.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(page: str | Path, png: str | Path, size: str = "1200,900") -> Path:
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found: install Debian's `chromium` package (apt-get install chromium)")
    png = Path(png).resolve()
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}", f"--screenshot={png}",
                        Path(page).resolve().as_uri()], check=True, capture_output=True, timeout=60)
    return png


if __name__ == "__main__":
    print(screenshot(sys.argv[1], sys.argv[2]))
