"""The app on the local devnet with a real KRYPTON provider (neo-go, Kamailio, the provider
service: `krypton devnet up --providers 1` in the app's data dir): create a wallet, get GAS,
register with the provider on chain and see the confirmation, call a headless `krypton phone`
(bob, registered with the same provider) by his NEO address, see the call established with live
quality figures, hang up; a message each way; the registration transaction in the history; GAS
sent with the fee shown before confirming. Then a run of calls for the memory figure (E2E_CALLS,
default 5; the closing note's figure is from E2E_CALLS=100). Each step saves a screenshot. Waits on elements and events with timeouts.
"""
import json
import os
import queue
import subprocess
import threading
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import KEYSTORE, TARGET
from screen import attr, typed, until, visible

KRYPTON = os.environ.get("KRYPTON_BIN") or os.path.join(TARGET, "debug", "krypton")
PASSWORD = "e2e calls password"
CALLS = int(os.environ.get("E2E_CALLS", "5"))
# the CLI uses the app's keychain store (the devnet's providers keep their wallets there)
ENV = dict(os.environ, KRYPTON_KEYSTORE=KEYSTORE, NO_COLOR="1")


def krypton(data_dir, *args, stdin=None, net=None):
    """Runs the CLI with --json; returns the last JSON line (its result)."""
    base = [KRYPTON, "--data-dir", data_dir, "--json"]
    if net:
        base += ["--network", net["rpc"], "--contract", net["contract"]]
    r = subprocess.run(base + list(args), input=stdin, capture_output=True, text=True, timeout=180,
                       env=ENV)
    errors = [line for line in r.stderr.splitlines() if " WARN " not in line and '"progress"' not in line]
    assert r.returncode == 0, f"krypton {' '.join(args)}: {r.stdout[-1000:]}" + "\n".join(errors[-20:])
    return json.loads(r.stdout.strip().splitlines()[-1])


class HeadlessPhone:
    """`krypton phone --wallet ADDRESS` (the devnet's bob) in a data dir of its own."""

    def __init__(self, work, net, address):
        self.address = address
        d = os.path.join(work, "bob")
        os.makedirs(d, exist_ok=True)
        pw = os.path.join(d, "password")
        with open(os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(net["accounts_password"] + "\n")
        cmd = [KRYPTON, "--data-dir", d, "--network", net["rpc"], "--contract", net["contract"],
               "phone", "--wallet", address, "--password-file", pw, "--auto-answer",
               "--codecs", "opus,pcmu"]
        self.log = open(os.path.join(d, "phone.log"), "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=ENV)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def send(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait(self, event, timeout=30, **match):
        end = time.monotonic() + timeout
        seen = []
        while time.monotonic() < end:
            try:
                e = self.events.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            seen.append(e)
            if e.get("event") == event and all(e.get(k) == v for k, v in match.items()):
                return e
        pytest.fail(f"bob saw no {event} {match} within {timeout} s; saw {seen[-10:]}")

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.send(cmd="quit")
                self.proc.wait(timeout=15)
            except Exception:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def devnet(app_dirs):
    """The devnet with one provider, in the app's data dir (stopped at the end)."""
    assert os.access(KRYPTON, os.X_OK), f"build the CLI first (cargo build -p krypton-cli): {KRYPTON}"
    data = app_dirs["data"]
    try:
        t0 = time.monotonic()
        up = krypton(data, "devnet", "up", "--providers", "1")
        print(f"devnet up with a provider in {time.monotonic() - t0:.1f} s")
        up["names"] = {a["name"]: a["address"] for a in up["accounts"]}
        yield up
    finally:
        with open(os.path.join(app_dirs["files"], "devnet-down.log"), "w") as log:
            subprocess.run([KRYPTON, "--data-dir", data, "devnet", "down"], stdout=log,
                           stderr=subprocess.STDOUT, timeout=120, env=ENV)


@pytest.fixture(scope="module")
def bob(devnet, app_dirs):
    """Bob: the devnet's account, registered on chain with provider-a, phone running headless."""
    work = app_dirs["files"]
    d = os.path.join(work, "bob")
    pw = devnet["accounts_password"] + "\n"
    address = devnet["names"]["bob"]
    krypton(d, "--password-stdin", "wallet", "import", "--nep6", devnet["accounts_file"], stdin=pw, net=devnet)
    krypton(d, "--password-stdin", "--account", address, "register", "--provider",
            devnet["names"]["provider-a"], stdin=pw, net=devnet)
    p = HeadlessPhone(work, devnet, address)
    try:
        p.wait("registered", 30, account=address)
        yield p
    finally:
        p.stop()


def test_new_wallet_gets_gas(driver, devnet, artifacts, app_dirs):
    visible(driver, "first-run-screen", timeout=30)
    typed(driver, "create-password", PASSWORD)
    typed(driver, "create-confirm", PASSWORD)
    driver.find_element(By.ID, "create-submit").click()
    visible(driver, "backup-screen", timeout=60)
    address = driver.find_element(By.ID, "new-address").text
    typed(driver, "backup-path", os.path.join(app_dirs["files"], "backup.json"))
    driver.find_element(By.ID, "backup-submit").click()
    WebDriverWait(driver, 10).until(EC.element_to_be_clickable((By.ID, "backup-continue"))).click()
    visible(driver, "main-screen")
    # the wallet panel shows the devnet and an empty balance
    # (the panel fills in as the answers come: network first, then the balances)
    until(driver, "the network line", lambda d: "devnet" in d.find_element(By.ID, "network-line").text)
    until(driver, "an empty balance", lambda d: d.find_element(By.ID, "balance-gas").text == "0")
    krypton(app_dirs["data"], "devnet", "fund", address, "--gas", "50")
    driver.find_element(By.ID, "wallet-refresh").click()
    until(driver, "50 GAS", lambda d: d.find_element(By.ID, "balance-gas").text == "50")
    driver.save_screenshot(os.path.join(artifacts, "calls-wallet.png"))


def test_register_with_the_provider_and_see_it_confirmed(driver, devnet, artifacts):
    provider = devnet["names"]["provider-a"]
    driver.find_element(By.ID, "nav-providers").click()
    row = until(driver, "provider-a in the list", lambda d: d.find_elements(
        By.CSS_SELECTOR, f'#provider-list li[data-provider="{provider}"] button.register'))
    assert "Not registered" in driver.find_element(By.ID, "registration-line").text
    row[0].click()
    until(driver, "the confirmation", lambda d: d.find_elements(
        By.CSS_SELECTOR, '#tx-progress li[data-step="confirmed"]'), timeout=60)
    steps = [li.get_attribute("data-step") for li in driver.find_elements(By.CSS_SELECTOR, "#tx-progress li")]
    assert steps[-3:] == ["signed", "submitted", "confirmed"], steps
    until(driver, "the registration line", lambda d: provider in d.find_element(By.ID, "registration-line").text)
    driver.save_screenshot(os.path.join(artifacts, "calls-registered.png"))
    # the phone starts on the new registration and registers at the provider
    driver.find_element(By.ID, "nav-phone").click()
    until(driver, "the phone to register", lambda d: attr(d, "phone-status", "data-state") == "registered")
    driver.save_screenshot(os.path.join(artifacts, "calls-phone-registered.png"))


def call_bob(driver, bob):
    before = attr(driver, "call-panel", "data-call")
    typed(driver, "dial-to", bob.address)
    driver.find_element(By.ID, "dial-call").click()
    # a new call (the panel keeps the last call's attributes while hidden), shown and up
    until(driver, "the call to be established", lambda d: attr(d, "call-panel", "data-call") != before
          and d.find_element(By.ID, "call-panel").is_displayed()
          and attr(d, "call-state", "data-state") == "established")
    return bob.wait("established", 30)


def hang_up(driver, bob):
    driver.find_element(By.ID, "call-hangup").click()
    visible(driver, "call-ended")
    return bob.wait("ended", 30)


def test_call_a_headless_phone_with_live_quality(driver, bob, artifacts):
    driver.find_element(By.ID, "nav-phone").click()
    call_bob(driver, bob)
    # live quality: at least two samples (one per second), figures on screen
    until(driver, "two quality samples", lambda d: int(attr(d, "call-quality", "data-samples") or 0) >= 2)
    text = driver.find_element(By.ID, "call-quality").text
    assert "MOS" in text and "jitter" in text and "loss" in text, text
    assert driver.find_element(By.ID, "call-timer").text != "0:00"
    driver.save_screenshot(os.path.join(artifacts, "calls-in-call.png"))
    ended = hang_up(driver, bob)
    assert ended["reason"] == "remote_hangup", ended
    assert "You hung up" in driver.find_element(By.ID, "call-ended").text
    driver.save_screenshot(os.path.join(artifacts, "calls-ended.png"))


def test_a_message_each_way(driver, bob, artifacts, app_dirs):
    driver.find_element(By.ID, "nav-messages").click()
    typed(driver, "msg-to", bob.address)
    typed(driver, "msg-body", "Hello Bob, from the desktop app")
    driver.find_element(By.ID, "msg-send").click()
    until(driver, "delivered", lambda d: d.find_elements(By.CSS_SELECTOR, '#msg-list li.out[data-status="delivered"]'))
    got = bob.wait("message", 30)
    assert got["body"] == "Hello Bob, from the desktop app"
    me = got["from"]
    bob.send(cmd="message", to=me, body="Hi, this is bob's headless phone")
    # (the list is drawn anew on each phone event: read it inside the wait)
    texts = until(driver, "bob's message", lambda d: [
        li.text for li in d.find_elements(By.CSS_SELECTOR, "#msg-list li.in")])
    assert "Hi, this is bob's headless phone" in texts[0]
    driver.save_screenshot(os.path.join(artifacts, "calls-messages.png"))


def test_the_registration_is_in_the_history(driver, artifacts):
    # (the Providers panel is hidden now: read the text, not the rendered text)
    txid = [li.get_attribute("textContent") for li in driver.find_elements(
        By.CSS_SELECTOR, '#tx-progress li[data-step="signed"]')]
    driver.find_element(By.ID, "nav-wallet").click()
    driver.find_element(By.ID, "wallet-refresh").click()
    # (each refresh draws the list anew: read it inside the wait)
    txs = until(driver, "the register transaction", lambda d: [
        li.get_attribute("data-tx") for li in d.find_elements(
            By.CSS_SELECTOR, '#history-list li[data-kind="register"]')])
    tx = txs[0]
    assert tx and any(tx in t for t in txid), (tx, txid)
    # the GAS it cost is in the balance
    assert driver.find_element(By.ID, "balance-gas").text != "50"
    driver.save_screenshot(os.path.join(artifacts, "calls-history.png"))


def test_send_gas_with_the_fee_shown_first(driver, devnet, app_dirs, artifacts):
    bob = devnet["names"]["bob"]
    before = krypton(app_dirs["files"] + "/cli", "balance", bob, net=devnet)["GAS_datoshi"]
    driver.find_element(By.ID, "nav-wallet").click()
    typed(driver, "send-to", bob)
    typed(driver, "send-amount", "1.5")
    driver.find_element(By.ID, "send-review").click()
    visible(driver, "send-preview", timeout=30)
    fees = float(driver.find_element(By.ID, "send-preview-fees").text)
    total = float(driver.find_element(By.ID, "send-preview-total").text)
    assert driver.find_element(By.ID, "send-preview-amount").text == "1.5"
    assert 0 < fees < 1 and abs(total - (1.5 + fees)) < 1e-8, (fees, total)
    # nothing is sent before the confirmation
    assert krypton(app_dirs["files"] + "/cli", "balance", bob, net=devnet)["GAS_datoshi"] == before
    driver.save_screenshot(os.path.join(artifacts, "calls-send-review.png"))
    driver.find_element(By.ID, "send-confirm").click()
    until(driver, "the transfer's confirmation", lambda d: d.find_elements(
        By.CSS_SELECTOR, '#send-progress li[data-step="confirmed"]'), timeout=60)
    after = krypton(app_dirs["files"] + "/cli", "balance", bob, net=devnet)["GAS_datoshi"]
    assert int(after) - int(before) == 150_000_000, (before, after)
    until(driver, "the transfer in the history", lambda d: d.find_elements(
        By.CSS_SELECTOR, '#history-list li[data-kind="send"]'))
    driver.save_screenshot(os.path.join(artifacts, "calls-sent.png"))


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    kids = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/stat") as f:
                    ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                kids.append(int(e))
    return kids


def memory(pid):
    """(the app's RSS, its WebKit processes' RSS) in KiB."""
    return rss_kib(pid), sum(rss_kib(k) for k in children(pid))


def app_pid():
    """The krypton-desktop process this session drives (the newest one)."""
    out = subprocess.run(["pgrep", "-n", "-f", "krypton-desktop"], capture_output=True, text=True)
    return int(out.stdout.strip())


def test_memory_over_many_calls(driver, bob, artifacts):
    driver.find_element(By.ID, "nav-phone").click()
    pid = app_pid()
    before, web_before = memory(pid)
    t0 = time.monotonic()
    for _ in range(CALLS):
        call_bob(driver, bob)
        hang_up(driver, bob)
    after, web_after = memory(pid)
    mib = lambda k: k / 1024  # noqa: E731
    line = (f"{CALLS} calls in {time.monotonic() - t0:.0f} s; RSS of krypton-desktop "
            f"{mib(before):.1f} -> {mib(after):.1f} MiB ({mib(after - before):+.1f}), "
            f"of its WebKit processes {mib(web_before):.1f} -> {mib(web_after):.1f} MiB "
            f"({mib(web_after - web_before):+.1f})")
    print(line)
    with open(os.path.join(artifacts, "memory.txt"), "w") as f:
        f.write(line + "\n")
    driver.save_screenshot(os.path.join(artifacts, "calls-many.png"))
