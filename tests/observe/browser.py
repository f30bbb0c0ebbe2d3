"""Headless Chromium driven by selenium, for the dashboard tests (Debian `chromium` + `chromium-driver`).

`make test` installs both when missing; if they still cannot be found the tests
skip with that message rather than fail.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any, Dict, Iterator, List

import pytest

MISSING = ("headless Chromium is not available: install the Debian packages chromium and chromium-driver "
           "(make test does this with apt-get when it can)")


def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver that records the browser console; quit afterwards."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    driver_path = shutil.which("chromedriver")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not driver_path or not binary:
        pytest.skip(MISSING)
    # Its own profile folder: Chromium refuses a profile another Chromium holds (another test process or
    # a developer's browser on the same account), and chromedriver then reports only that the
    # DevToolsActivePort file does not exist.
    with tempfile.TemporaryDirectory(prefix="bos-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                    f"--user-data-dir={profile}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def console_errors(driver: Any) -> List[Dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    """Poll `check` (a page condition) until it is truthy; its value, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
