"""WebDriver session for the E2E tests: the real krypton-desktop binary in WebKitGTK, driven
through tauri-driver and WebKitWebDriver on an X display (scripts/test-desktop runs it under
xvfb-run inside a fresh session keyring, `keyctl session -`).

Env: APP (the binary; default $CARGO_TARGET_DIR/debug/krypton-desktop), TAURI_DRIVER,
NATIVE_DRIVER, E2E_ARTIFACTS (screenshots, logs, the app's data dir; default
$CARGO_TARGET_DIR/e2e), E2E_KEYSTORE (default keyutils), BROWSER_NAME (optional).
Only loopback is used; ports are chosen free at run time.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.remote_connection import RemoteConnection

TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/krypton/target")
APP = os.environ.get("APP") or os.path.join(TARGET, "debug", "krypton-desktop")
TAURI_DRIVER = (os.environ.get("TAURI_DRIVER") or shutil.which("tauri-driver")
                or os.path.expanduser("~/.cargo/bin/tauri-driver"))
NATIVE_DRIVER = os.environ.get("NATIVE_DRIVER", "/usr/bin/WebKitWebDriver")
ARTIFACTS = os.environ.get("E2E_ARTIFACTS") or os.path.join(TARGET, "e2e")
KEYSTORE = os.environ.get("E2E_KEYSTORE", "keyutils")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the WebDriver process exited ({proc.returncode}); see {ARTIFACTS}/driver.log")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


@pytest.fixture(scope="session")
def artifacts():
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def app_dirs(artifacts):
    """A fresh data dir (so a fresh keychain namespace) and a scratch dir for files."""
    d = tempfile.mkdtemp(prefix="run-", dir=artifacts)
    data, files = os.path.join(d, "data"), os.path.join(d, "files")
    os.makedirs(files)
    return {"data": data, "files": files}


@pytest.fixture(scope="module")
def driver(artifacts, app_dirs):
    assert os.environ.get("DISPLAY"), "run under xvfb-run (scripts/test-desktop does)"
    assert os.access(APP, os.X_OK), f"build the app first: {APP}"
    assert os.access(TAURI_DRIVER, os.X_OK), "install tauri-driver: scripts/setup"
    port, native_port = _free_port(), _free_port()
    log = open(os.path.join(artifacts, "driver.log"), "ab")
    proc = subprocess.Popen(
        [TAURI_DRIVER, "--port", str(port), "--native-port", str(native_port),
         "--native-driver", NATIVE_DRIVER],
        stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, TAURI_WEBVIEW_AUTOMATION="true"),
    )
    try:
        # tauri-driver listens at once, WebKitWebDriver a little later: wait for both
        _wait_port(port, proc)
        _wait_port(native_port, proc)
        opts = ArgOptions()
        if os.environ.get("BROWSER_NAME"):
            opts.set_capability("browserName", os.environ["BROWSER_NAME"])
        opts.set_capability("tauri:options", {
            "application": APP,
            "args": ["--data-dir", app_dirs["data"], "--keystore", KEYSTORE],
        })
        conn = RemoteConnection(client_config=ClientConfig(
            remote_server_addr=f"http://127.0.0.1:{port}", timeout=60))
        t0 = time.monotonic()
        drv = webdriver.Remote(command_executor=conn, options=opts)
        print(f"session started in {time.monotonic() - t0:.2f}s")
        try:
            yield drv
        finally:
            drv.quit()
    finally:
        proc.terminate()  # only the driver this fixture started; it ends the app
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
