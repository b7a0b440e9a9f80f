#!/usr/bin/env python3
"""Two headless phones on the local setup: a loopback Kamailio (testkit/kamailio/kamailio.cfg),
`krypton phone` as alice and as bob. Alice calls bob, both play speech, bob records it; alice
hangs up; then they exchange a message. Prints every JSON event and a summary.

    scripts/phonecall.py KRYPTON_BINARY WORK_DIR

Everything runs on 127.0.0.1 on ports chosen now, and is stopped at the end.
"""
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOMAIN = "demo.test"


def free_port():
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                with socket.socket() as t:
                    t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def start_kamailio(work):
    sip, ws = free_port(), free_port()
    kdir = os.path.join(work, "kamailio")
    shutil.rmtree(kdir, ignore_errors=True)
    os.makedirs(os.path.join(kdir, "run"))
    os.makedirs(os.path.join(kdir, "db"))
    cfg = open(os.path.join(ROOT, "testkit/kamailio/kamailio.cfg")).read()
    for k, v in {"%SIP_PORT%": sip, "%WS_PORT%": ws, "%DIR%": kdir, "%DOMAIN%": DOMAIN,
                 "%ALGORITHM%": "SHA-256"}.items():
        cfg = cfg.replace(k, str(v))
    open(os.path.join(kdir, "kamailio.cfg"), "w").write(cfg)
    open(os.path.join(kdir, "db/version"), "w").write(
        "id(int,auto) table_name(string) table_version(int)\n0:version:1\n1:subscriber:7\n")
    open(os.path.join(kdir, "db/subscriber"), "w").write(
        "id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null)\n"
        "1:alice:%s:alice-demo-pw::\n2:bob:%s:bob-demo-pw::\n" % (DOMAIN, DOMAIN))
    log = open(os.path.join(kdir, "kamailio.log"), "w")
    proc = subprocess.Popen(["kamailio", "-DD", "-E", "-f", os.path.join(kdir, "kamailio.cfg")],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    # Wait until it answers an OPTIONS.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    for n in range(75):
        msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-d%d\r\n"
               "From: <sip:demo@127.0.0.1>;tag=d%d\r\nTo: <sip:127.0.0.1>\r\nCall-ID: demo%d\r\n"
               "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (sip, s.getsockname()[1] if n else 0, n, n, n))
        s.sendto(msg.encode(), ("127.0.0.1", sip))
        try:
            if s.recv(2048).startswith(b"SIP/2.0 200"):
                return proc, sip
        except OSError:
            pass
    proc.kill()
    sys.exit("phonecall: Kamailio did not start; see %s" % os.path.join(kdir, "kamailio.log"))


class Phone:
    def __init__(self, name, binary, work, sip_port, args):
        self.name = name
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        pw = os.path.join(d, "password")
        open(pw, "w").write("%s-demo-pw\n" % name)
        cmd = [binary, "--data-dir", d, "--account", "sip:%s@%s" % (name, DOMAIN), "phone",
               "--proxy", "sip:127.0.0.1:%d;transport=udp" % sip_port, "--password-file", pw] + args
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
            print("  %-5s %s" % (self.name, line.strip()))
            self.events.put(e)

    def send(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait(self, event, timeout=20, **match):
        end = time.time() + timeout
        while time.time() < end:
            try:
                e = self.events.get(timeout=max(0.0, end - time.time()))
            except queue.Empty:
                break
            if e.get("event") == event and all(e.get(k) == v for k, v in match.items()):
                return e
        sys.exit("phonecall: %s saw no '%s' event within %d s" % (self.name, event, timeout))


def main():
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    speech = os.path.join(work, "speech.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", speech,
                    "Hello Bob. This call goes through a local Kamailio, and the audio is Opus."],
                   check=True)
    kam, sip = start_kamailio(work)
    heard = os.path.join(work, "bob-heard.wav")
    phones = []
    try:
        bob = Phone("bob", binary, work, sip, ["--auto-answer", "--record", heard])
        phones.append(bob)
        alice = Phone("alice", binary, work, sip, ["--play", speech, "--hangup-after", "6"])
        phones.append(alice)
        bob.wait("registered")
        alice.wait("registered")
        alice.send(cmd="call", to="bob")
        est = alice.wait("established")
        ended = alice.wait("ended", timeout=30)
        bob.wait("ended")
        alice.send(cmd="message", to="bob", body="Thanks for taking my call!")
        status = alice.wait("message_status", status="delivered")
        got = bob.wait("message")
        bob.send(cmd="message", to="alice", body="Any time.")
        bob.wait("message_status", status="delivered")
        alice.wait("message")
        for p in phones:
            p.send(cmd="quit")
            p.proc.wait(timeout=15)
        s = ended.get("stats") or {}
        print("\nsummary:")
        print("  call:    alice -> bob, %s, %.1f s, ended by %s" % (est["codec"], ended["duration"], ended["reason"]))
        print("  quality: %d packets sent, %d received, %d lost, jitter %.1f ms, MOS estimate %.2f"
              % (s.get("packets_sent", 0), s.get("packets_received", 0), s.get("packets_lost", 0),
                 s.get("jitter_ms", 0.0), s.get("mos", 0.0)))
        print("  audio:   bob recorded what he heard in %s" % heard)
        print("  message: alice -> bob %s (%s): %r" % (status["status"], status["code"], got["body"]))
    finally:
        for p in phones:
            if p.proc.poll() is None:
                p.proc.kill()
        kam.terminate()
        kam.wait(timeout=10)


if __name__ == "__main__":
    main()
