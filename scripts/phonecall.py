#!/usr/bin/env python3
"""The demo's phones on the devnet and its two KRYPTON providers, and a stand-in PSTN gateway.

    scripts/phonecall.py gateway WORK_DIR NUMBER
        Starts baresip 1.0 as a PSTN gateway (no registration, one account answering NUMBER
        automatically, speech from espeak-ng as its microphone) in the background and prints its
        SIP port. It keeps the port of its previous run when that is free, so the providers' trunk
        stays the same. Its pid is in WORK_DIR/gateway/pid.
    scripts/phonecall.py stop-gateway WORK_DIR
        Stops it.
    scripts/phonecall.py calls KRYPTON_BINARY WORK_DIR DEVNET_UP_JSON NUMBER
        Two headless wallet phones (`krypton phone --wallet`), alice and bob, each in a data dir
        of its own holding the devnet accounts, register with their on-chain providers. Alice
        calls bob by his bare NEO address (Opus, speech from espeak-ng; bob records it), hangs up,
        they exchange a MESSAGE each way, then alice calls NUMBER, which goes out through her
        provider's trunk to the gateway. Prints every JSON event and a summary. The phones are
        stopped at the end.

DEVNET_UP_JSON is the result of `krypton --json devnet up --providers 2 …` (a file).
"""
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

GATEWAY_RTP = (17400, 17499)


def port_free(port):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", port))
        for p in (port, port + 1):  # baresip binds port+1 for TLS too
            with socket.socket() as t:
                t.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False


def free_port():
    while True:
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
        if port < 65535 and port_free(port):
            return port


def read_file(path, default=None):
    try:
        return open(path).read().strip()
    except OSError:
        return default


def pid_alive(pid):
    try:
        state = open("/proc/%d/stat" % pid).read().rsplit(") ", 1)[1][0]
        return state != "Z"
    except (OSError, IndexError):
        return False


# ------------------------------------------------------------------ the gateway

def gateway(work, number):
    gdir = os.path.join(work, "gateway")
    os.makedirs(gdir, exist_ok=True)
    stop_gateway(work)
    saved = read_file(os.path.join(gdir, "sip_port"))
    sip = int(saved) if saved and port_free(int(saved)) else free_port()
    ctrl = free_port()
    raw, speech = os.path.join(gdir, "speech-raw.wav"), os.path.join(gdir, "speech-8k.wav")
    subprocess.run(["espeak-ng", "-v", "en-gb", "-s", "150", "-w", raw,
                    "You have reached the public telephone network, through a KRYPTON provider's trunk."],
                   check=True)
    subprocess.run(["sox", raw, "-r", "8000", "-c", "1", "-b", "16", speech], check=True)
    os.makedirs(os.path.join(gdir, "dump"), exist_ok=True)
    config = (
        "poll_method epoll\nsip_listen 127.0.0.1:%(sip)d\ncall_local_timeout 120\ncall_max_calls 4\n"
        "audio_source aufile,%(src)s\naudio_player aubridge,null%(sip)d\naudio_alert aubridge,null%(sip)d\n"
        "ausrc_srate 8000\nausrc_channels 1\nauplay_srate 8000\nauplay_channels 1\n"
        "ausrc_format s16\nauplay_format s16\naudio_buffer 20-160\nrtp_ports %(r0)d-%(r1)d\n"
        "net_interface 127.0.0.1\nrtp_stats yes\nrtcp_mux no\njitter_buffer_delay 5-10\n"
        "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule opus.so\n"
        "module aufile.so\nmodule aubridge.so\nmodule_tmp uuid.so\nmodule_tmp account.so\n"
        "module_app contact.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:%(ctrl)d\n"
        % {"sip": sip, "ctrl": ctrl, "src": speech, "r0": GATEWAY_RTP[0], "r1": GATEWAY_RTP[1]})
    open(os.path.join(gdir, "config"), "w").write(config)
    open(os.path.join(gdir, "accounts"), "w").write(
        "<sip:%s@127.0.0.1>;answermode=auto;audio_codecs=PCMU/8000/1;regint=0\n" % number)
    open(os.path.join(gdir, "contacts"), "w").write("")
    log = open(os.path.join(gdir, "baresip.log"), "w")
    proc = subprocess.Popen(["baresip", "-f", gdir, "-v"], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log, start_new_session=True)
    end = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", ctrl), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > end:
                proc.kill()
                sys.exit("phonecall: the baresip gateway did not start; see %s"
                         % os.path.join(gdir, "baresip.log"))
            time.sleep(0.05)
    for name, value in (("pid", proc.pid), ("sip_port", sip), ("ctrl_port", ctrl)):
        open(os.path.join(gdir, name), "w").write("%d\n" % value)
    print(sip)


def stop_gateway(work):
    pid = read_file(os.path.join(work, "gateway", "pid"))
    if not pid:
        return
    pid = int(pid)
    try:
        cmdline = open("/proc/%d/cmdline" % pid).read()
    except OSError:
        cmdline = ""
    if "baresip" in cmdline and pid_alive(pid):
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            if not pid_alive(pid):
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    os.remove(os.path.join(work, "gateway", "pid"))


class GatewayEvents:
    """The gateway's ctrl_tcp events (JSON netstrings)."""

    def __init__(self, work):
        port = int(read_file(os.path.join(work, "gateway", "ctrl_port")))
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(None)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            data = self.sock.recv(4096)
            if not data:
                return
            buf += data
            while b":" in buf:
                n, rest = buf.split(b":", 1)
                if len(rest) < int(n) + 1:
                    break
                body, buf = rest[:int(n)], rest[int(n) + 1:]
                try:
                    e = json.loads(body)
                except ValueError:
                    continue
                if e.get("event"):
                    print("  %-7s %s" % ("gateway", body.decode()))
                    self.events.put(e)

    def wait(self, kind, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            try:
                e = self.events.get(timeout=max(0.0, end - time.time()))
            except queue.Empty:
                break
            if e.get("type") == kind:
                return e
        sys.exit("phonecall: the gateway saw no %s within %d s" % (kind, timeout))


# ------------------------------------------------------------------ the phones

class Phone:
    def __init__(self, name, binary, work, net, address, args):
        self.name, self.address = name, address
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        base = [binary, "--data-dir", d, "--network", net["rpc"], "--contract", net["contract"]]
        listed = subprocess.run(base + ["--json", "wallet", "list"], capture_output=True, text=True)
        if address not in listed.stdout:
            subprocess.run(base + ["--json", "--password-stdin", "wallet", "import", "--nep6",
                                   net["accounts_file"]],
                           input=net["accounts_password"] + "\n", capture_output=True, text=True,
                           check=True)
        pw = os.path.join(d, "password")
        with open(os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(net["accounts_password"] + "\n")
        cmd = base + ["phone", "--wallet", address, "--password-file", pw] + args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(d, "phone.log"), "w"), text=True)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            print("  %-7s %s" % (self.name, line.strip()))
            self.events.put(e)

    def send(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait(self, event, timeout=20, pred=None, **match):
        end = time.time() + timeout
        while time.time() < end:
            try:
                e = self.events.get(timeout=max(0.0, end - time.time()))
            except queue.Empty:
                break
            if e.get("event") == event and all(e.get(k) == v for k, v in match.items()) \
                    and (pred is None or pred(e)):
                return e
        sys.exit("phonecall: %s saw no '%s' event within %d s" % (self.name, event, timeout))


def quality(established, ended):
    s = ended.get("stats") or {}
    return ("%s, %.1f s, ended by %s; %d packets sent, %d received, %d lost, jitter %.1f ms, "
            "MOS estimate %.2f" % (s.get("codec") or established.get("codec", "?"),
                                   ended.get("duration", 0.0), ended["reason"],
                                   s.get("packets_sent", 0), s.get("packets_received", 0),
                                   s.get("packets_lost", 0), s.get("jitter_ms", 0.0), s.get("mos", 0.0)))


def calls(binary, work, setup_file, number):
    net = json.load(open(setup_file))
    names = {a["name"]: a["address"] for a in net["accounts"]}
    providers = {p["name"]: p for p in net["providers"]}
    alice, bob = names["alice"], names["bob"]
    os.makedirs(work, exist_ok=True)
    speech = os.path.join(work, "speech.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", speech,
                    "Hello Bob. This call goes from my provider to yours, and the audio is Opus."],
                   check=True)
    heard = os.path.join(work, "bob-heard.wav")
    gw = GatewayEvents(work)
    phones = []
    try:
        bob_p = Phone("bob", binary, work, net, bob,
                      ["--auto-answer", "--record", heard, "--codecs", "opus,pcmu"])
        phones.append(bob_p)
        alice_p = Phone("alice", binary, work, net, alice,
                        ["--play", speech, "--codecs", "opus,pcmu"])
        phones.append(alice_p)
        bob_p.wait("registered", 30, account=bob)
        alice_p.wait("registered", 30, account=alice)

        # Alice calls Bob by his bare NEO address: provider-a → provider-b → Bob.
        alice_p.send(cmd="call", to=bob)
        est = alice_p.wait("established", 30)
        incoming = bob_p.wait("incoming")
        bob_est = bob_p.wait("established")
        time.sleep(6)
        alice_p.send(cmd="hangup", call=est["call"])
        ended = alice_p.wait("ended", 30)
        bob_ended = bob_p.wait("ended")

        # A MESSAGE each way between their NEO addresses.
        alice_p.send(cmd="message", to=bob, body="Thanks for taking my call!")
        st_ab = alice_p.wait("message_status", pred=lambda e: e.get("status") != "pending")
        got_b = bob_p.wait("message") if st_ab["status"] == "delivered" else None
        bob_p.send(cmd="message", to=alice, body="Any time.")
        st_ba = bob_p.wait("message_status", pred=lambda e: e.get("status") != "pending")
        got_a = alice_p.wait("message") if st_ba["status"] == "delivered" else None

        # Alice calls a phone number: out through provider-a's trunk to the gateway.
        alice_p.send(cmd="call", to=number)
        pstn = alice_p.wait("established", 30)
        gw_est = gw.wait("CALL_ESTABLISHED", 20)
        time.sleep(5)
        alice_p.send(cmd="hangup", call=pstn["call"])
        pstn_ended = alice_p.wait("ended", 30)
        gw.wait("CALL_CLOSED", 20)

        for p in phones:
            p.send(cmd="quit")
            p.proc.wait(timeout=15)
    finally:
        for p in phones:
            if p.proc.poll() is None:
                p.proc.kill()

    def via(uri):
        """Which provider a SIP URI's host is (the providers' realm is their location)."""
        host = (uri or "").split("@")[-1].split(";")[0].split(">")[0]
        names = [p["name"] for p in providers.values() if p["location"] == host]
        return "the realm of " + names[0] if names else "no provider's realm"

    pa, pb = providers["provider-a"], providers["provider-b"]
    print("\nsummary:")
    print("  alice    %s  registered at provider-a %s (%s)" % (alice, pa["location"], pa["address"]))
    print("  bob      %s  registered at provider-b %s (%s)" % (bob, pb["location"], pb["address"]))
    print("  call 1:  alice -> bob by address: alice's phone -> provider-a -> provider-b -> bob's phone")
    print("           bob saw it from %s (%s)" % (incoming.get("from"), via(incoming.get("from"))))
    print("           alice: %s" % quality(est, ended))
    print("           bob:   %s" % quality(bob_est, bob_ended))
    print("           bob recorded what he heard in %s" % heard)
    print("  message: alice -> bob %s (%s)%s" % (st_ab["status"], st_ab.get("code"),
                                                 ": %r" % got_b["body"] if got_b else ""))
    print("  message: bob -> alice %s (%s)%s" % (st_ba["status"], st_ba.get("code"),
                                                 ": %r" % got_a["body"] if got_a else ""))
    print("  call 2:  alice -> %s: alice's phone -> provider-a -> its trunk -> PSTN gateway (baresip) 127.0.0.1:%s"
          % (number, read_file(os.path.join(work, "gateway", "sip_port"))))
    print("           the gateway answered %s, caller %s (%s)"
          % (gw_est.get("accountaor"), gw_est.get("peeruri"), via(gw_est.get("peeruri"))))
    print("           alice: %s" % quality(pstn, pstn_ended))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "gateway":
        gateway(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "stop-gateway":
        stop_gateway(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "calls":
        calls(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
