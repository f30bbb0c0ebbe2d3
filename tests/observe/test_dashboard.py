"""The dashboard in a real browser (headless Chromium) during a simulated 1,000-node boot:
the sessions page lists the session, the session page's machine view changes while the
boot runs and ends all stable, a click shows a node's history, and the console stays clean."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List

import pytest
import requests

from tests.observe.browser import chromium, console_errors, wait_for
from tests.operators.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a 1,000-node boot in a browser

NODES = 1000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("dashboard"), nodes=NODES)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()



def opened(browser: Any, link: str) -> bool:
    """Click `link` once it is there; False if the page redrew it between find and click."""
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        found = browser.find_elements("css selector", link)
        if found:
            found[0].click()
        return bool(found)
    except StaleElementReferenceException:
        return False


def machine_counts(browser: Any) -> Dict[str, int]:
    raw = browser.execute_script("const m = document.getElementById('machine'); return m && m.dataset.counts;")
    return json.loads(raw) if raw else {}


def test_a_boot_watched_in_the_browser(big: Stack, browser: Any) -> None:
    """The boot is held (the simulated hardware nearly stopped, BOS's waits long enough not to
    time out) until the browser shows the session, then let go: the machine view must show
    nodes on their way and then every node stable, however fast the stack boots."""
    nodes = big.take(len(big.pool))
    big.template("dash-all", nodes)
    big.set_options(max_power_off_wait_time=600, max_power_on_wait_time=600, max_boot_wait_time=600)
    big.sim.set_speed(0.001)
    big.session("dash-boot", "dash-all", "boot")
    dashboard = big.api_server.url + "/dashboard/"

    browser.get(dashboard)
    wait_for(lambda: opened(browser, "tr[data-session='dash-boot'] a"), 20, "the session row to open")
    wait_for(lambda: sum(machine_counts(browser).values()) == len(nodes), 60, "the machine view to show every node")
    held = machine_counts(browser)
    assert set(held) - {"stable"}, f"the held boot already showed every node stable: {held}"
    seen: List[Dict[str, int]] = [held]
    big.sim.set_speed(10.0)

    def complete() -> bool:
        counts = machine_counts(browser)
        if counts != seen[-1]:
            seen.append(counts)
        return counts == {"stable": len(nodes)}
    wait_for(complete, 300, "every node stable in the machine view")
    assert len(seen) >= 2, f"the machine view did not change while the boot ran: {seen}"
    wait_for(lambda: browser.find_element("id", "s-status").text == "complete", 30, "the session to show complete")

    # the progress plot, the live badge and a node's history from a click on its cell
    assert browser.find_element("id", "live").text == "live"
    canvas = browser.find_element("id", "machine")
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(browser).move_to_element_with_offset(canvas, -canvas.size["width"] // 2 + 8,
                                                      -canvas.size["height"] // 2 + 20).click().perform()
    wait_for(lambda: browser.find_elements("css selector", "#history tbody tr"), 20, "a node's history")
    statuses = [td.text for td in browser.find_elements("css selector", "#history tbody tr td:nth-child(2)")]
    assert statuses[-1] == "stable" and "power_on_called" in statuses
    assert console_errors(browser) == []


def test_components_page_and_tenancy(big: Stack, browser: Any) -> None:
    browser.get(big.api_server.url + "/apis/bos/dashboard/#/components")
    wait_for(lambda: len(browser.find_elements("css selector", "#components tbody tr")) == 100, 30, "a page of components")
    assert console_errors(browser) == []
    # the event stream is tenant-scoped like the API: an unknown tenant is refused, never served
    resp = requests.get(big.api_server.url + "/dashboard/api/sessions/dash-boot/nodes",
                        headers={"Cray-Tenant-Name": "no-such-tenant"}, timeout=10)
    assert resp.status_code in (400, 404)
    resp = requests.get(big.api_server.url + "/dashboard/api/events?session=dash-boot&tenant=a",
                        headers={"Cray-Tenant-Name": "b"}, timeout=10)
    assert resp.status_code == 400
