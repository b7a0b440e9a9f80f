"""First run with a new wallet: passwords twice, create, see the address, export the backup,
arrive at the main screen. Waits on elements with timeouts; no sleeps."""
import json
import os
import re

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from screen import typed, visible

PASSWORD = "e2e first-run password"
ADDRESS = re.compile(r"^N[1-9A-HJ-NP-Za-km-z]{33}$")


def test_first_run_screen(driver):
    visible(driver, "first-run-screen", timeout=30)
    assert driver.find_element(By.TAG_NAME, "h1").text == "KRYPTON"
    assert driver.find_element(By.ID, "create-form").is_displayed()


def test_differing_passwords_say_what_to_do(driver):
    typed(driver, "create-password", PASSWORD)
    typed(driver, "create-confirm", PASSWORD + "x")
    driver.find_element(By.ID, "create-submit").click()
    assert "type the same password twice" in visible(driver, "error").text
    assert driver.find_element(By.ID, "first-run-screen").is_displayed()


def test_create_wallet_shows_address(driver, artifacts):
    typed(driver, "create-password", PASSWORD)
    typed(driver, "create-confirm", PASSWORD)
    driver.find_element(By.ID, "create-submit").click()
    # scrypt runs on a blocking thread in the core; the page shows progress meanwhile
    visible(driver, "backup-screen", timeout=60)
    address = driver.find_element(By.ID, "new-address").text
    assert ADDRESS.match(address), address
    assert driver.find_element(By.ID, "backup-continue").get_attribute("disabled") is not None
    # the password fields were cleared as soon as the password went to the core
    assert driver.find_element(By.ID, "create-password").get_attribute("value") == ""
    driver.save_screenshot(os.path.join(artifacts, "first-run-address.png"))


def test_export_backup_then_main_screen(driver, artifacts, app_dirs):
    address = driver.find_element(By.ID, "new-address").text
    backup = os.path.join(app_dirs["files"], "backup.json")
    typed(driver, "backup-path", backup)
    driver.find_element(By.ID, "backup-submit").click()
    assert backup in visible(driver, "backup-result").text
    with open(backup) as f:
        text = f.read()
    nep6 = json.loads(text)
    assert nep6["accounts"][0]["address"] == address
    assert nep6["accounts"][0]["key"].startswith("6P")  # NEP-2 encrypted
    assert PASSWORD not in text
    driver.save_screenshot(os.path.join(artifacts, "first-run-backup.png"))

    WebDriverWait(driver, 10).until(EC.element_to_be_clickable((By.ID, "backup-continue"))).click()
    visible(driver, "main-screen")
    assert address in driver.find_element(By.ID, "main-addresses").text
    assert driver.find_element(By.ID, "main-state").text == "unlocked"
    driver.save_screenshot(os.path.join(artifacts, "first-run.png"))


def test_ungranted_command_and_inline_script_are_refused(driver):
    # core plugins are not granted to the main window (capabilities/main.json)
    res = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.__TAURI__.core.invoke('plugin:event|listen', {event: 'x', target: {kind: 'Any'}, handler: 0})"
        "  .then(r => done('ok:' + r), e => done('err:' + e));"
    )
    assert res.startswith("err:") and "not allowed" in res, res
    ran = driver.execute_script(
        "const s = document.createElement('script');"
        "s.textContent = 'window.__inlineRan = true';"
        "document.body.appendChild(s);"
        "return window.__inlineRan === true;"
    )
    assert ran is False
