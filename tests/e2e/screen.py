"""Reading and driving the app's screen: the E2E tests' shared helpers (elements by id, waits
with timeouts, a screenshot when a wait fails)."""
import os

import pytest
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ARTIFACTS


def visible(drv, element_id, timeout=20):
    """The element, once it is shown."""
    return WebDriverWait(drv, timeout).until(EC.visibility_of_element_located((By.ID, element_id)))


def typed(drv, element_id, text):
    """Replaces a field's text."""
    box = drv.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(text)


def until(drv, what, check, timeout=30):
    """Waits until check(drv) is truthy; fails naming `what`, with a screenshot of the screen. An
    element redrawn while `check` reads it (stale) means: look again."""
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.1,
                             ignored_exceptions=[NoSuchElementException, StaleElementReferenceException]).until(lambda d: check(d))
    except TimeoutException:
        shot = os.path.join(ARTIFACTS, "failed-" + "".join(c if c.isalnum() else "-" for c in what) + ".png")
        drv.save_screenshot(shot)
        status = drv.find_element(By.ID, "error").get_attribute("textContent")
        pytest.fail(f"waited {timeout} s for {what}; error line: {status!r}; screen: {shot}")


def attr(drv, element_id, name):
    """An attribute of the element with that id."""
    return drv.find_element(By.ID, element_id).get_attribute(name)
