"""First run with a wallet made by neo-go itself: neo-go's CLI writes a NEP-6 file (through a
pseudo-terminal, as its password prompts need one), the app imports it through the first-run
"import" form and shows the same address neo-go reports. A wrong password says what to do and
imports nothing. Waits on elements with timeouts; no sleeps.

Env: KRYPTON_NEOGO (the neogo binary; default: scripts/setup's, then PATH)."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.file_detector import UselessFileDetector
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from test_first_run import ADDRESS, typed, visible

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PTYRUN = os.path.join(ROOT, "scripts", "ptyrun.py")
LABEL = "carol"
# non-ASCII on purpose: the password goes from a WebKit text field through IPC to scrypt as UTF-8,
# and must give the same key as neo-go's terminal prompt did
PASSWORD = "neo-go pass é"
# scrypt (n=16384) runs twice on an import; generous for a loaded 2-core machine
SCRYPT_TIMEOUT = 120


def _neogo():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    for candidate in (os.environ.get("KRYPTON_NEOGO"), os.path.join(cache, "krypton", "tools", "neogo"),
                      shutil.which("neogo")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("neo-go is not installed: run scripts/setup (or set KRYPTON_NEOGO to the neogo binary)")


@pytest.fixture(scope="module")
def neogo_wallet(app_dirs):
    """A one-account NEP-6 file made by `neogo wallet init -a`, and the address neo-go reports."""
    neogo = _neogo()
    path = os.path.join(app_dirs["files"], "neo-go.json")
    out = subprocess.run(
        [sys.executable, PTYRUN, LABEL, PASSWORD, PASSWORD, "--", neogo, "wallet", "init", "-w", path, "-a"],
        capture_output=True, text=True, timeout=90,
    )
    assert out.returncode == 0 and os.path.exists(path), f"neo-go made no wallet:\n{out.stdout}\n{out.stderr}"
    dump = subprocess.run([neogo, "wallet", "dump-keys", "-w", path], capture_output=True, text=True,
                          timeout=30, check=True).stdout
    # dump-keys prints "ADDRESS (simple signature contract):", then the public key on the next line
    first = next(line.strip() for line in dump.splitlines() if line.strip())
    address = first.split(" ", 1)[0]
    assert ADDRESS.match(address), dump
    with open(path) as f:
        nep6 = json.load(f)
    assert [a["address"] for a in nep6["accounts"]] == [address]
    assert nep6["accounts"][0]["key"].startswith("6P")  # NEP-2, encrypted by neo-go
    assert PASSWORD not in json.dumps(nep6, ensure_ascii=False)
    return {"path": path, "address": address}


def _status(driver):
    """The core's wallet_status, asked from the page as the UI asks it."""
    res = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.__TAURI__.core.invoke('wallet_status')"
        "  .then(r => done({ok: r}), e => done({err: String(e)}));"
    )
    assert "ok" in res, res
    return res["ok"]


def _import(driver, path, password):
    visible(driver, "first-run-screen", timeout=30)
    driver.find_element(By.ID, "tab-import").click()
    visible(driver, "import-form")
    # selenium would upload an existing file named in send_keys (LocalFileDetector, remote
    # drivers' default), which WebKitWebDriver does not support: type the path as text
    with driver.file_detector_context(UselessFileDetector):
        typed(driver, "import-path", path)
    typed(driver, "import-password", password)
    driver.find_element(By.ID, "import-submit").click()


def test_wrong_password_says_what_to_do_and_imports_nothing(driver, artifacts, neogo_wallet):
    _import(driver, neogo_wallet["path"], PASSWORD + "x")
    error = visible(driver, "error", timeout=SCRYPT_TIMEOUT).text
    assert "Wrong password" in error and "try again" in error, error
    driver.save_screenshot(os.path.join(artifacts, "import-wrong-password.png"))
    # still on the first run, the password field cleared, the form usable again
    assert driver.find_element(By.ID, "first-run-screen").is_displayed()
    assert driver.find_element(By.ID, "import-password").get_attribute("value") == ""
    WebDriverWait(driver, 10).until(EC.element_to_be_clickable((By.ID, "import-submit")))
    s = _status(driver)
    assert s["state"] == "none" and s["accounts"] == [], s


def test_import_shows_the_address_neo_go_reports(driver, artifacts, neogo_wallet):
    address = neogo_wallet["address"]
    _import(driver, neogo_wallet["path"], PASSWORD)
    visible(driver, "main-screen", timeout=SCRYPT_TIMEOUT)
    shown = driver.find_element(By.ID, "main-addresses").text
    # one line: the address, neo-go's label, and the default mark the import sets
    assert shown == f"{address} {LABEL} (default)", shown
    assert driver.find_element(By.ID, "main-state").text == "unlocked"
    assert not driver.find_element(By.ID, "error").is_displayed()
    assert driver.find_element(By.ID, "import-password").get_attribute("value") == ""
    driver.save_screenshot(os.path.join(artifacts, "import.png"))
    s = _status(driver)
    assert s["defaultAddress"] == address, s
    assert [(a["address"], a["watchOnly"], a["isDefault"]) for a in s["accounts"]] == [(address, False, True)], s


def test_imported_wallet_unlocks_with_the_neo_go_password(driver, neogo_wallet):
    # the keychain now holds neo-go's key: lock, and unlock it again with neo-go's password
    driver.find_element(By.ID, "lock").click()
    visible(driver, "unlock-screen")
    typed(driver, "unlock-password", PASSWORD)
    driver.find_element(By.ID, "unlock-submit").click()
    visible(driver, "main-screen", timeout=SCRYPT_TIMEOUT)
    assert driver.find_element(By.ID, "main-state").text == "unlocked"
    assert neogo_wallet["address"] in driver.find_element(By.ID, "main-addresses").text
