"""First run with a key that neo-go exports as WIF (`neogo wallet export --decrypt`, through a
pseudo-terminal): the app imports it through the first-run "WIF" form, shows the address neo-go
reports, goes through the backup step to the main screen, and its Receive block shows that
address with a QR code drawn from the core's modules. Before that, the NEP-6 file chooser: the
file is chosen through the <input type=file> (WebKitWebDriver sets the file from its path), read
in the webview and imported by its text; a wrong password there says what to do and imports
nothing. A module of its own: each test module gets a fresh app with no wallet (conftest).
Waits on elements with timeouts; no sleeps.

Env: KRYPTON_NEOGO (the neogo binary; default: scripts/setup's, then PATH)."""
import os
import re
import subprocess
import sys

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.file_detector import UselessFileDetector

from screen import typed, until, visible
from test_import import PASSWORD, PTYRUN, SCRYPT_TIMEOUT, _neogo, _status, neogo_wallet  # noqa: F401 (fixture)

WIF = re.compile(r"^[KL][1-9A-HJ-NP-Za-km-z]{51}$")


@pytest.fixture(scope="module")
def neogo_wif(neogo_wallet):  # noqa: F811 (the imported fixture)
    """The WIF of neo-go's account, as `neogo wallet export --decrypt` prints it."""
    out = subprocess.run(
        [sys.executable, PTYRUN, PASSWORD, "--", _neogo(), "wallet", "export", "-w", neogo_wallet["path"],
         "--decrypt", neogo_wallet["address"]],
        capture_output=True, text=True, timeout=90,
    )
    wifs = [line.strip() for line in out.stdout.splitlines() if WIF.match(line.strip())]
    assert out.returncode == 0 and len(wifs) == 1, f"neo-go exported no WIF (exit {out.returncode}):\n{out.stderr}"
    return wifs[0]


def _first_run_tab(driver, tab, form):
    visible(driver, "first-run-screen", timeout=30)
    driver.find_element(By.ID, tab).click()
    visible(driver, form)


def test_file_chooser_reads_the_file_and_a_wrong_password_imports_nothing(driver, artifacts, neogo_wallet):  # noqa: F811
    _first_run_tab(driver, "tab-import", "import-form")
    chooser = driver.find_element(By.ID, "import-file")
    # a local path, set by WebKitWebDriver on the file input (no upload: the driver is local)
    with driver.file_detector_context(UselessFileDetector):
        chooser.send_keys(neogo_wallet["path"])
    assert driver.execute_script("return arguments[0].files[0].name", chooser) == "neo-go.json"
    assert driver.find_element(By.ID, "import-path").get_attribute("value") == ""
    typed(driver, "import-password", PASSWORD + "x")
    driver.find_element(By.ID, "import-submit").click()
    error = visible(driver, "error", timeout=SCRYPT_TIMEOUT).text
    # the core decrypted the file's key: it read the chosen file's text (the path field is empty)
    assert "Wrong password" in error and "try again" in error, error
    driver.save_screenshot(os.path.join(artifacts, "import-file-wrong-password.png"))
    assert driver.find_element(By.ID, "import-password").get_attribute("value") == ""
    s = _status(driver)
    assert s["state"] == "none" and s["accounts"] == [], s


def test_a_mistyped_wif_says_what_to_do(driver, neogo_wif):
    _first_run_tab(driver, "tab-wif", "wif-form")
    typo = neogo_wif[:20] + ("x" if neogo_wif[20] != "x" else "y") + neogo_wif[21:]
    typed(driver, "wif-key", typo)
    typed(driver, "wif-password", PASSWORD)
    typed(driver, "wif-confirm", PASSWORD)
    driver.find_element(By.ID, "wif-submit").click()
    error = visible(driver, "error", timeout=30).text
    assert "ot a valid WIF" in error and "copy it again" in error, error
    assert neogo_wif[:12] not in error and neogo_wif[40:] not in error
    for field in ("wif-key", "wif-password", "wif-confirm"):
        assert driver.find_element(By.ID, field).get_attribute("value") == "", field
    assert _status(driver)["state"] == "none"


def test_wif_import_then_backup_then_receive_with_qr(driver, artifacts, app_dirs, neogo_wallet, neogo_wif):  # noqa: F811
    address = neogo_wallet["address"]
    _first_run_tab(driver, "tab-wif", "wif-form")
    typed(driver, "wif-key", neogo_wif)
    typed(driver, "wif-password", PASSWORD)
    typed(driver, "wif-confirm", PASSWORD)
    driver.find_element(By.ID, "wif-submit").click()

    # the backup step follows, with neo-go's address
    visible(driver, "backup-screen", timeout=SCRYPT_TIMEOUT)
    assert driver.find_element(By.ID, "new-address").text == address
    assert driver.find_element(By.ID, "wif-key").get_attribute("value") == ""
    backup = os.path.join(app_dirs["files"], "wif-backup.json")
    typed(driver, "backup-path", backup)
    driver.find_element(By.ID, "backup-submit").click()
    visible(driver, "backup-result", timeout=30)
    with open(backup) as f:
        text = f.read()
    assert address in text and neogo_wif not in text and PASSWORD not in text
    until(driver, "the Continue button", lambda d: d.find_element(By.ID, "backup-continue").is_enabled())
    driver.find_element(By.ID, "backup-continue").click()

    visible(driver, "main-screen", timeout=30)
    assert driver.find_element(By.ID, "main-addresses").text == f"{address} KRYPTON (default)"
    until(driver, "the receive address", lambda d: d.find_element(By.ID, "receive-address").text == address)
    assert driver.find_element(By.ID, "receive-uri").text == f"neo:{address}"

    # the canvas shows the core's modules: sample each module's centre (past the quiet zone)
    core = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.__TAURI__.core.invoke('wallet_receive', {address: arguments[0]})"
        "  .then(r => done({ok: r}), e => done({err: String(e)}));",
        address,
    )
    assert "ok" in core, core
    qr = core["ok"]["qr"]
    drawn = driver.execute_script(
        """const [c, size] = arguments;
        const g = c.getContext('2d');
        const scale = c.width / (size + 8);
        const px = g.getImageData(0, 0, c.width, c.height).data;
        const dark = (x, y) => px[(y * c.width + x) * 4] < 128 ? '1' : '0';
        let quiet = '', m = '';
        for (let i = 0; i < c.width; i++) quiet += dark(i, 1) + dark(1, i);
        for (let y = 0; y < size; y++)
          for (let x = 0; x < size; x++)
            m += dark(Math.floor((x + 4.5) * scale), Math.floor((y + 4.5) * scale));
        return {width: c.width, height: c.height, quiet, modules: m};""",
        driver.find_element(By.ID, "receive-qr"), qr["size"],
    )
    assert drawn["width"] == drawn["height"] and drawn["width"] >= qr["size"] + 8, drawn["width"]
    assert "1" not in drawn["quiet"], "the quiet zone is white"
    assert drawn["modules"] == qr["modules"] and "1" in qr["modules"] and "0" in qr["modules"]
    driver.find_element(By.ID, "receive-qr").screenshot(os.path.join(artifacts, "receive-qr.png"))
    driver.save_screenshot(os.path.join(artifacts, "import-wif-receive.png"))
    s = _status(driver)
    assert s["state"] == "unlocked" and s["defaultAddress"] == address, s
