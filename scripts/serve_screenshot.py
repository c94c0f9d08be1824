"""Drive `memnet serve` in a real browser (headless Chromium from Debian's `chromium` and
`chromium-driver` packages, through selenium) and save a screenshot of a wrong answer.

    python scripts/serve_screenshot.py RUN [RUN ...] --out results/serve/explorer.png [--data-dir DIR]

Serves the runs on a free port of 127.0.0.1, steps the Browse tab to the shortest test story that
the first run answers wrong, and saves the page. tests/test_serve.py drives the page with the same helpers.
"""

import argparse
import shutil
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# the browser talks to the served page only: no name lookups (Chromium would ask for autofill hints about the
# page's text boxes, and for updates), no background services, no crash reports
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--no-pings", "--disable-domain-reliability",
           "--disable-breakpad", "--disable-client-side-phishing-detection",
           "--disable-features=AutofillServerCommunication,OptimizationHints,MediaRouter,Translate"]
WAIT_S = 60  # the first page load compiles Gradio's frontend in the browser: seconds on a 2-core machine


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver), or None where either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def open_browser(width: int = 1280, height: int = 1000):
    """A headless Chromium under selenium; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise FileNotFoundError("no Chromium or chromedriver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                 *OFFLINE]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(found[1]), options=options)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for(driver, test, what: str, timeout: float = WAIT_S):
    """Poll `test(driver)` until it is truthy; on timeout the message says what never appeared."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def check(d):
        try:
            return test(d)
        except StaleElementReferenceException:  # Gradio re-rendered the element between find and read
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(check)
    except TimeoutException:
        raise TimeoutError(f"the page never showed {what} within {timeout} s") from None


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def inner_html(driver, element_id: str) -> str:
    return by_id(driver, element_id).get_attribute("innerHTML")


def click_choice(driver, element_id: str, label: str) -> None:
    """Click the radio button labelled `label` in Gradio's Radio `element_id`."""
    from selenium.webdriver.common.by import By

    by_id(driver, element_id).find_element(By.CSS_SELECTOR, f"input[value='{label}']").click()


def type_text(driver, element_id: str, text: str) -> None:
    """Replace the text of Gradio's Textbox `element_id`, as a person would (select all, type)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = by_id(driver, element_id).find_element(By.CSS_SELECTOR, "textarea, input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)  # in a Textbox of several lines Enter starts a new line (shift-Enter would submit)


def open_explorer(driver, url: str) -> None:
    """Load the page and wait until the Browse tab shows its first question."""
    driver.get(url)
    wait_for(driver, lambda d: "Predicted" in inner_html(d, "browse-example"), "the first question of Browse")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--data-dir")
    parser.add_argument("--size", default="1280,1000", help="window WIDTH,HEIGHT")
    args = parser.parse_args()
    from memnet.serve import Explorer, build_app, launch, load_runs

    explorer = Explorer(load_runs(args.runs, args.data_dir))
    app = build_app(explorer)
    url = launch(app, "127.0.0.1", free_port())
    driver = open_browser(*map(int, args.size.split(",")))
    try:
        open_explorer(driver, url)
        # the shortest story answered wrong fits the window: step to it as a person would, with "next"
        run = explorer.runs[args.runs[0]]
        wrong = explorer.matching(args.runs[0], "all", "test", "wrong answers")
        steps = min(range(len(wrong)), key=lambda at: len(run.data.examples["test"][wrong[at]].story))
        for at in range(steps):
            by_id(driver, "browse-next").click()
            wait_for(driver, lambda d: by_id(d, "browse-where").text.startswith(f"{at + 2} of "), f"wrong answer {at + 2}")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
        app.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
