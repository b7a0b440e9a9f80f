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
from selenium.webdriver.support.ui import Select, WebDriverWait

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
        self.sip = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "ready":
                self.sip = e["sip"]  # its own SIP address (host:port)
            self.events.put(e)

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
    """The devnet with two providers, in the app's data dir (stopped at the end)."""
    assert os.access(KRYPTON, os.X_OK), f"build the CLI first (cargo build -p krypton-cli): {KRYPTON}"
    data = app_dirs["data"]
    try:
        t0 = time.monotonic()
        up = krypton(data, "devnet", "up", "--providers", "2")
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



def my_address(driver):
    return driver.find_element(By.CSS_SELECTOR, "#main-addresses code").get_attribute("textContent")


def test_an_incoming_call_is_answered_then_one_declined(driver, bob, artifacts):
    driver.find_element(By.ID, "nav-phone").click()
    me = my_address(driver)
    bob.send(cmd="call", to=me)
    visible(driver, "incoming-panel", timeout=30)
    assert bob.address in driver.find_element(By.ID, "incoming-from").text
    driver.save_screenshot(os.path.join(artifacts, "calls-incoming.png"))
    driver.find_element(By.ID, "incoming-answer").click()
    until(driver, "the answered call to be up", lambda d: d.find_element(By.ID, "call-panel").is_displayed()
          and attr(d, "call-state", "data-state") == "established")
    bob.wait("established", 30)
    assert not driver.find_element(By.ID, "incoming-panel").is_displayed()
    # during the call: switch the speaker (ALSA's null device is there even without a card)
    driver.find_element(By.CSS_SELECTOR, "#call-devices summary").click()
    options = until(driver, "the device list", lambda d: [
        o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#call-output option")
        if o.get_attribute("value") != "default"])
    null = [v for v in options if "null" in v.lower()]
    assert null, f"no ALSA null device among {options}"
    Select(driver.find_element(By.ID, "call-output")).select_by_value(null[0])
    until(driver, "the phone to switch the speaker",
          lambda d: attr(d, "call-devices-note", "data-state") == "changed")
    assert "output" in driver.find_element(By.ID, "call-devices-note").text
    driver.save_screenshot(os.path.join(artifacts, "calls-device-switched.png"))
    hang_up(driver, bob)

    bob.send(cmd="call", to=me)
    visible(driver, "incoming-panel", timeout=30)
    driver.find_element(By.ID, "incoming-decline").click()
    ended = bob.wait("ended", 30)
    assert ended["reason"] != "local_hangup", ended
    until(driver, "the incoming panel to go", lambda d: not d.find_element(By.ID, "incoming-panel").is_displayed())
    driver.save_screenshot(os.path.join(artifacts, "calls-declined.png"))


def test_a_rule_routes_numbers_through_an_ordinary_sip_account(driver, bob, artifacts):
    """Settings: a SIP account without registration whose proxy is bob's phone itself, and a
    rule "numbers starting with 0 go through it"; dialling 0301234 reaches bob that way, while
    NEO addresses still go through the KRYPTON provider."""
    driver.find_element(By.ID, "nav-settings").click()
    visible(driver, "panel-settings")
    until(driver, "the settings to load", lambda d: d.find_element(By.ID, "set-autolock").get_attribute("value"))
    driver.find_element(By.ID, "set-add-account").click()
    acc = driver.find_elements(By.CSS_SELECTOR, "#set-accounts .sip-account")[-1]
    field = lambda row, name: row.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]')  # noqa: E731
    field(acc, "id").send_keys("direct")
    field(acc, "aor").send_keys("sip:alice@127.0.0.1")
    field(acc, "proxy").send_keys(f"sip:{bob.sip}")
    field(acc, "register").click()  # off: bob is no registrar
    driver.find_element(By.ID, "set-add-rule").click()
    rule = driver.find_elements(By.CSS_SELECTOR, "#set-rules .rule")[-1]
    field(rule, "value").send_keys("0")
    field(rule, "accounts").send_keys("direct")
    driver.find_element(By.ID, "settings-save").click()
    visible(driver, "settings-saved")
    driver.save_screenshot(os.path.join(artifacts, "calls-routing-settings.png"))

    # the phone starts again with the new account and rule
    driver.find_element(By.ID, "nav-phone").click()
    until(driver, "the phone to register again", lambda d: attr(d, "phone-status", "data-state") == "registered")
    before = attr(driver, "call-panel", "data-call")
    typed(driver, "dial-to", "030 1234")
    driver.find_element(By.ID, "dial-call").click()
    incoming = bob.wait("incoming", 30)
    assert "0301234" in json.dumps(incoming) or "alice@127.0.0.1" in incoming["from"], incoming
    until(driver, "the routed call to be up", lambda d: attr(d, "call-panel", "data-call") != before
          and attr(d, "call-state", "data-state") == "established")
    bob.wait("established", 30)
    hang_up(driver, bob)
    # and a NEO address still goes through the provider
    call_bob(driver, bob)
    hang_up(driver, bob)


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


def test_call_history_and_a_contact_called_from_the_list(driver, bob, artifacts):
    """The calls made above are in the History tab (the core's call log) with bob's address and
    a duration; a contact saved there is called with its Call button (bob answers by himself)."""
    driver.find_element(By.ID, "nav-history").click()
    visible(driver, "panel-history")
    rows = f'#calls-list li[data-remote="{bob.address}"]'
    # (the list is drawn anew after each call: read it inside the wait)
    durations = until(driver, "the earlier calls in the history", lambda d: [
        li.find_element(By.CSS_SELECTOR, ".duration").text
        for li in d.find_elements(By.CSS_SELECTOR, rows)])
    # the tab shows the newest 100 calls (ui/src/book_panel.ts HISTORY_LIMIT); a few of them
    # are the incoming and routed calls above
    assert len(durations) >= min(1 + CALLS, 95), durations
    assert len(driver.find_elements(By.CSS_SELECTOR, "#calls-list li")) <= 100
    assert all(":" in t and t.replace(":", "").isdigit() for t in durations), durations
    first = driver.find_elements(By.CSS_SELECTOR, rows)[-1]
    assert first.get_attribute("data-direction") == "out"
    assert first.get_attribute("data-reason") == "local_hangup"
    driver.save_screenshot(os.path.join(artifacts, "calls-history-tab.png"))

    typed(driver, "contact-name", "Bob (headless)")
    typed(driver, "contact-destination", f"  {bob.address} ")
    driver.find_element(By.ID, "contact-save").click()
    contact = f'#contacts-list li[data-destination="{bob.address}"]'
    until(driver, "the contact in the list", lambda d: d.find_element(
        By.CSS_SELECTOR, f"{contact} .name").text == "Bob (headless)")
    # the history names the contact now
    until(driver, "the contact's name in the history", lambda d: "Bob (headless)" in d.find_element(
        By.CSS_SELECTOR, rows).text)
    driver.save_screenshot(os.path.join(artifacts, "calls-contact-saved.png"))

    newest = driver.find_element(By.CSS_SELECTOR, "#calls-list li").get_attribute("data-id")
    before = attr(driver, "call-panel", "data-call")
    driver.find_element(By.CSS_SELECTOR, f"{contact} button.contact-call").click()
    # the Call button dials through the Phone panel
    visible(driver, "panel-phone")
    assert driver.find_element(By.ID, "dial-to").get_attribute("value") == bob.address
    until(driver, "the contact's call to be established", lambda d: attr(d, "call-panel", "data-call") != before
          and d.find_element(By.ID, "call-panel").is_displayed()
          and attr(d, "call-state", "data-state") == "established")
    bob.wait("established", 30)
    driver.save_screenshot(os.path.join(artifacts, "calls-contact-call.png"))
    hang_up(driver, bob)
    driver.find_element(By.ID, "nav-history").click()
    # a new newest row (the count may not grow: the tab shows the newest 100)
    until(driver, "the contact's call in the history", lambda d: d.find_element(
        By.CSS_SELECTOR, "#calls-list li").get_attribute("data-id") != newest
        and d.find_element(By.CSS_SELECTOR, "#calls-list li").get_attribute("data-remote") == bob.address)
    driver.save_screenshot(os.path.join(artifacts, "calls-history-after-contact.png"))


def routed_from(driver, bob):
    """Calls bob by his address; returns the From bob saw, then hangs up. (The phone started
    again since the last call, so call numbers start again: the panel, hidden between calls,
    shows the new call once it is displayed.)"""
    assert not driver.find_element(By.ID, "call-panel").is_displayed()
    typed(driver, "dial-to", bob.address)
    driver.find_element(By.ID, "dial-call").click()
    seen = bob.wait("incoming", 30)["from"]
    until(driver, "the call to be established", lambda d: d.find_element(By.ID, "call-panel").is_displayed()
          and attr(d, "call-state", "data-state") == "established")
    bob.wait("established", 30)
    hang_up(driver, bob)
    return seen


def test_a_second_address_at_a_second_provider_and_rules_choose_between_them(driver, devnet, bob, app_dirs,
                                                                             artifacts):
    """Domestic via A, foreign via B with two KRYPTON providers: a second address in the wallet,
    registered with provider-b; calls leave through whichever address the rules name."""
    driver.find_element(By.ID, "nav-wallet").click()
    first = driver.find_element(By.CSS_SELECTOR, "#main-addresses li").get_attribute("data-address")
    driver.find_element(By.CSS_SELECTOR, "#add-address summary").click()
    typed(driver, "add-address-label", "via B")
    typed(driver, "add-address-password", PASSWORD)
    driver.find_element(By.ID, "add-address-submit").click()
    second = until(driver, "the new address", lambda d: [
        li.get_attribute("data-address") for li in d.find_elements(By.CSS_SELECTOR, "#main-addresses li")
        if li.get_attribute("data-address") != first and "via B" in li.text])[0]
    krypton(app_dirs["data"], "devnet", "fund", second, "--gas", "20")
    driver.find_element(By.CSS_SELECTOR, f'#main-addresses li[data-address="{second}"] button.make-default').click()
    until(driver, "the new default", lambda d: "(default)" in d.find_element(
        By.CSS_SELECTOR, f'#main-addresses li[data-address="{second}"]').text)
    until(driver, "its balance", lambda d: d.find_element(By.ID, "balance-gas").text == "20")
    driver.save_screenshot(os.path.join(artifacts, "calls-second-address.png"))

    provider_b = devnet["names"]["provider-b"]
    driver.find_element(By.ID, "nav-providers").click()
    # the panel redraws for the new default (not registered yet); click only once it has
    until(driver, "the panel for the new address", lambda d: "Not registered" in d.find_element(
        By.ID, "registration-line").text)
    until(driver, "provider-b in the list", lambda d: d.find_elements(
        By.CSS_SELECTOR, f'#provider-list li[data-provider="{provider_b}"] button.register'))[0].click()
    until(driver, "the confirmation", lambda d: d.find_elements(
        By.CSS_SELECTOR, '#tx-progress li[data-step="confirmed"]') and provider_b in d.find_element(
        By.ID, "registration-line").text, timeout=60)
    driver.find_element(By.ID, "nav-phone").click()
    until(driver, "both addresses registered", lambda d: {first, second} <= set(
        (attr(d, "phone-status", "data-accounts") or "").split()), timeout=60)

    # no rule for NEO addresses: the default address (at provider-b) goes first
    assert second in routed_from(driver, bob)

    # a rule: NEO addresses through the first address (at provider-a)
    driver.find_element(By.ID, "nav-settings").click()
    until(driver, "the settings to load", lambda d: d.find_element(By.ID, "set-autolock").get_attribute("value"))
    driver.find_element(By.ID, "set-add-rule").click()
    rule = driver.find_elements(By.CSS_SELECTOR, "#set-rules .rule")[-1]
    Select(rule.find_element(By.CSS_SELECTOR, '[data-field="kind"]')).select_by_value("neo_address")
    rule.find_element(By.CSS_SELECTOR, '[data-field="accounts"]').send_keys(first)
    driver.find_element(By.ID, "settings-save").click()
    visible(driver, "settings-saved")
    driver.save_screenshot(os.path.join(artifacts, "calls-rule-via-a.png"))
    driver.find_element(By.ID, "nav-phone").click()
    until(driver, "both addresses registered again", lambda d: {first, second} <= set(
        (attr(d, "phone-status", "data-accounts") or "").split()), timeout=60)
    assert first in routed_from(driver, bob)
