"""Drive the playground page (``/``) in a real headless Chromium, for its test and its screenshot.

``with chromium() as driver:`` a local headless Chromium through Selenium with explicit paths
(the binary and chromedriver of ``Settings``: never Selenium Manager) and the service's own
``CHROME_ARGS``; it quits, and its temp files go, when the block ends. ``open_session(driver, page_url, tenant, api_key, client)``
fills the open form and waits for the session (or for the refusal); ``send(driver, action,
**fields)`` fills the action form, sends, and waits until the reply is rendered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from service.clients.browser_launch import CHROME_ARGS
from service.clients.browser_options import NO_SANDBOX
from service.config import Settings
from tests.support.ports import scaled

WINDOW = (1400, 1100)


@contextlib.contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A local headless Chromium, started exactly as the service starts its own (minus the proxy).

    It runs with a private temp dir (its profile and its singleton socket's directory, which
    Chromium would otherwise leave in the shared one), removed after the browser quits.
    """
    settings = Settings.from_env()
    scratch = tempfile.mkdtemp(prefix="inndx-playground-")
    options = webdriver.ChromeOptions()
    options.binary_location = settings.chrome_binary
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    if os.geteuid() == 0:  # the test's own browser, as root
        options.add_argument(NO_SANDBOX)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.add_argument(f"--user-data-dir={os.path.join(scratch, 'profile')}")
    service = ChromeService(executable_path=settings.chromedriver, env={**os.environ, "TMPDIR": scratch})
    try:
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.set_page_load_timeout(scaled(30))
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _type(driver: webdriver.Chrome, element_id: str, text: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    if text:
        field.send_keys(text)


def load(driver: webdriver.Chrome, page_url: str) -> None:
    driver.get(page_url)
    WebDriverWait(driver, scaled(10)).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def open_session(driver: webdriver.Chrome, tenant: str, api_key: str = "", client: str = "chrome", timeout: str = "20s") -> str:
    """Fill the open form and submit; the status line's state once settled (``open`` or ``error``)."""
    _type(driver, "tenant", tenant)
    _type(driver, "api-key", api_key)
    Select(driver.find_element(By.ID, "client")).select_by_value(client)
    _type(driver, "timeout", timeout)
    driver.find_element(By.ID, "open").click()
    status = driver.find_element(By.ID, "status")
    WebDriverWait(driver, scaled(45)).until(lambda _: status.get_attribute("data-state") in ("open", "error", "idle"))
    return status.get_attribute("data-state")


def send(driver: webdriver.Chrome, action: str, timeout: float = 45, **fields: str) -> None:
    """Send one action from the form (fields by element id) and wait for its reply in the log."""
    Select(driver.find_element(By.ID, "action")).select_by_value(action)
    for element_id, text in fields.items():
        _type(driver, element_id.replace("_", "-"), text)
    received = len(driver.find_elements(By.CSS_SELECTOR, "#log li.received"))
    driver.find_element(By.ID, "send").click()
    WebDriverWait(driver, scaled(timeout)).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log li.received")) > received
    )


def table(driver: webdriver.Chrome, table_id: str) -> list[list[str]]:
    """The rendered rows of a result table's body, cell texts."""
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    return [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td,th")] for row in rows]
