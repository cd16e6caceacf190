"""The status page in a real browser: Debian's chromium, headless, driven through chromium-driver
(selenium). Expects dm-api serving the seeded results at $API_URL (tests/api/run.sh starts it).

Asserts that each seeded dataset's status is in its own cell of the grid, coloured by its status
class, that the open findings list the seeded gap first among the high ones, that the schedulers'
leaders are shown, that the page has no JavaScript and fits a phone, and saves screenshots."""

import os
import pathlib
import tempfile

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

API_URL = os.environ.get("API_URL", "http://127.0.0.1:8000")
SHOTS = pathlib.Path(os.environ.get("SCREENSHOT_DIR", "target/api"))

# (symbol, timeframe, status) as the seeded audit finds them (crates/api/tests/support/seed.rs).
EXPECTED = [
    ("BTCUSDT", "1h", "critical"),
    ("ETHUSDT", "1h", "ok"),
    ("SOLUSDT", "1h", "warn"),
    ("BTCUSDT", "1d", "not_extracted"),
    ("ETHUSDT", "1d", "not_extracted"),
    ("SOLUSDT", "1d", "not_extracted"),
]


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="dm-api-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
    ]:
        opts.add_argument(flag)
    # Static page, no scripts needed: prove it by turning JavaScript off.
    opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def cell(driver, symbol, timeframe):
    return driver.find_element(
        By.CSS_SELECTOR, f'#grid td[data-symbol="{symbol}"][data-timeframe="{timeframe}"]'
    )


def test_grid_shows_each_seeded_status_in_its_cell(browser):
    browser.get(API_URL + "/")
    assert browser.title == "Data manager status"
    header = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#grid thead th")]
    assert header == ["Symbol", "1h", "1d"]
    rows = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#grid tbody th")]
    assert rows == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    colours = {}
    for symbol, timeframe, status in EXPECTED:
        td = cell(browser, symbol, timeframe)
        assert td.find_element(By.CSS_SELECTOR, ".st").text == status
        assert f"status-{status}" in td.get_attribute("class").split()
        # The column of the cell is the timeframe's column, its row the symbol's row.
        row = td.find_element(By.XPATH, "./parent::tr")
        assert row.find_element(By.TAG_NAME, "th").text == symbol
        index = row.find_elements(By.TAG_NAME, "td").index(td)
        assert header[index + 1] == timeframe
        colours.setdefault(status, set()).add(td.value_of_css_property("background-color"))
    # One colour per status, different between statuses: the CSS is applied.
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == len(colours)
    btc = cell(browser, "BTCUSDT", "1h")
    assert btc.find_element(By.CSS_SELECTOR, ".q").text.startswith("Q ")
    assert cell(browser, "SOLUSDT", "1h").find_element(By.CSS_SELECTOR, ".f").text == "fresh 2h"
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "status-page.png"))


def test_open_findings_and_schedulers_are_listed(browser):
    browser.get(API_URL + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#findings tbody tr")
    kinds = [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows]
    assert "gap" in kinds and "stale" in kinds
    gap = rows[kinds.index("gap")].find_elements(By.TAG_NAME, "td")
    assert gap[1].text == "BTCUSDT 1h"
    assert gap[3].text == "high"
    times = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
    assert times == sorted(times, reverse=True), "newest first"
    leaders = {
        r.get_attribute("data-lease"): r.find_element(By.CSS_SELECTOR, ".leader").text
        for r in browser.find_elements(By.CSS_SELECTOR, "#schedulers tbody tr")
    }
    assert leaders == {
        "data-manager-analytics": "analytics-0",
        "data-manager-auditor": "dm-auditor once",
    }
    assert browser.find_elements(By.TAG_NAME, "script") == []
    refresh = browser.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert int(refresh.get_attribute("content")) > 0


def test_reads_on_a_phone(browser):
    browser.set_window_size(390, 844)
    browser.get(API_URL + "/")
    # The page itself never scrolls sideways; wide tables scroll inside their own box.
    page_width = browser.execute_cdp_cmd("Runtime.evaluate", {
        "expression": "document.documentElement.scrollWidth", "returnByValue": True,
    })["result"]["value"]
    viewport = browser.execute_cdp_cmd("Runtime.evaluate", {
        "expression": "window.innerWidth", "returnByValue": True,
    })["result"]["value"]
    assert page_width <= viewport
    assert cell(browser, "BTCUSDT", "1h").is_displayed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "status-page-phone.png"))
    browser.set_window_size(1280, 900)
