## KRYPTON provider: Kamailio KEMI routing script (app_python3, Kamailio 5.6).
##
## Admits exactly the users the chain registers with this provider (provider/AUTH.md):
##   * KRYPTON phones (`Supported: krypton`) prove their NEO key with a SIP Bearer token (RFC 8898,
##     ES256 JWT) that the provider service verifies against its chain cache;
##   * standard SIP clients use digest credentials the service minted for a wallet-signed request
##     (`auth_ephemeral`), and the service still checks at every REGISTER that the address is ours.
## The provider service is asked over loopback HTTP; when it does not answer, requests get 503 with
## Retry-After (fail closed). The Bearer challenge's nonce is made here, with a key derived from the
## provider's secret that the service derives too (AUTH.md §4), so a challenge needs no service call;
## the 503 then comes on the second leg. Settings come from krypton.json beside this file (written by
## `krypton provider up`), the secret from kamailio.cfg beside it.

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import time

import KSR as KSR

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "krypton.json")) as f:
    CFG = json.load(f)
REALM = CFG["realm"]                 # the provider's on-chain location, e.g. 127.0.0.1:5070
SERVICE_HOST = CFG["service_host"]   # loopback address of the provider service
SERVICE_PORT = int(CFG["service_port"])
RPC_PORT = int(CFG["rpc_port"])      # loopback-only JSON-RPC listener (ul.rm from the service)
TIMEOUT = 2.0                        # seconds for a whole service call; it answers from memory
MAX_HEAD = 16384                     # longest response head accepted from the service


def bearer_nonce_key():
    """HMAC-SHA256(secret, "krypton bearer nonce"), secret = auth_ephemeral's (the provider's
    secret, which the service derives the same key from)."""
    with open(os.path.join(HERE, "kamailio.cfg")) as f:
        m = re.search(r'modparam\("auth_ephemeral",\s*"secret",\s*"([^"]+)"\)', f.read())
    if m is None:
        raise RuntimeError("krypton.py: no auth_ephemeral secret in kamailio.cfg")
    return hmac.new(m.group(1).encode(), b"krypton bearer nonce", hashlib.sha256).digest()


NONCE_KEY = bearer_nonce_key()

FLT_NATS = 5
OWN_USER = 1   # authenticate_caller: one of our users, proven
PEER = 2       # authenticate_caller: another deployed provider, for one of our users
FLB_NATB = 6


def mod_init():
    return kamailio()


class ServiceDown(Exception):
    pass


class Closed(Exception):
    """The service closed the connection before answering."""


class kamailio:
    def __init__(self):
        self.conn = None  # per Kamailio child: created after the fork, on first use
        self.buf = b""    # bytes read from self.conn and not yet consumed
        self.got = False  # the current request got some answer bytes (then no retry)

    def child_init(self, rank):
        return 0

    # ------------------------------------------------------------ provider service (HTTP, keep-alive)
    def service(self, method, path, body=None):
        """(status, JSON) from the provider service, HTTP/1.1 on a kept-alive loopback socket
        (http.client's header parsing cost more than the service's answer); raises ServiceDown
        when it cannot answer within TIMEOUT, whatever the reason."""
        if any(c in method + path for c in " \r\n\t"):
            raise ServiceDown("bad request line")
        data = b"" if body is None else json.dumps(body).encode()
        req = ("%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (method, path, SERVICE_HOST, SERVICE_PORT, len(data))
               ).encode() + data
        deadline = time.monotonic() + TIMEOUT
        # A kept-alive connection the service closed meanwhile (restart, idle timeout) fails
        # before any answer: then once more on a new connection. Anything else: ServiceDown.
        for attempt in (1, 2):
            reused = self.conn is not None
            self.got = False
            try:
                if self.conn is None:
                    self.conn = socket.create_connection(
                        (SERVICE_HOST, SERVICE_PORT), timeout=max(deadline - time.monotonic(), 0.001))
                    self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.buf = b""
                self.conn.settimeout(max(deadline - time.monotonic(), 0.001))
                self.conn.sendall(req)
                return self.response(deadline)
            except Exception as e:  # refused, reset, closed, timeout, bad HTTP, bad JSON
                retry = (reused and attempt == 1 and not self.got
                         and isinstance(e, (Closed, ConnectionError)))
                self.close()
                if not retry:
                    raise ServiceDown(repr(e))
        raise ServiceDown("unreachable")

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None
        self.buf = b""

    def recv_more(self, deadline, answered):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("provider service: no answer in %.1f s" % TIMEOUT)
        self.conn.settimeout(left)
        chunk = self.conn.recv(65536)
        if not chunk:
            if answered or self.buf:
                raise ValueError("provider service: connection closed mid-answer")
            raise Closed("provider service closed the connection")
        self.got = True
        self.buf += chunk

    def response(self, deadline):
        """One response (Content-Length framing, as the service sends) from self.conn."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD:
                raise ValueError("provider service: response head too long")
            self.recv_more(deadline, False)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.") or len(lines[0]) < 12:
            raise ValueError("provider service: bad status line")
        status = int(lines[0][9:12])
        length, keep = None, True
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding":
                raise ValueError("provider service: unexpected Transfer-Encoding")
            elif k == b"connection" and v.strip().lower() == b"close":
                keep = False
        if length is None or length < 0:
            raise ValueError("provider service: no Content-Length")
        while len(self.buf) < length:
            self.recv_more(deadline, True)
        raw, self.buf = self.buf[:length], self.buf[length:]
        if not keep:
            self.close()
        return status, (json.loads(raw) if raw else {})

    def reply(self, code, text, reason=None, extra=None):
        """Stateless reply; a refusal carries its text in Reason (the phone shows it) and a shortened
        phrase (baresip shows the phrase)."""
        if reason:
            safe = reason.replace('"', "'").replace("\r", " ").replace("\n", " ")
            KSR.hdr.append_to_reply('Reason: SIP;cause=%d;text="%s"\r\n' % (code, safe))
            text = safe[:80]
        if extra:
            KSR.hdr.append_to_reply(extra)
        KSR.sl.send_reply(code, text)
        return -255

    def unavailable(self, why):
        KSR.err("krypton: provider service unavailable: %s\n" % why)
        return self.reply(503, "Provider service unavailable", None, "Retry-After: 5\r\n")

    # ------------------------------------------------------------ request route
    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        # 17895 without 2048 (digest credentials check): that flag rejects every Bearer request.
        if KSR.sanity.sanity_check(17895, 7) < 0:
            return 1
        self.natdetect()
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                self.relay()
            return 1
        if KSR.siputils.has_totag() > 0:
            self.within_dialog()
            return 1
        if KSR.tmx.t_precheck_trans() > 0:
            KSR.tm.t_check_trans()
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1
        if KSR.is_REGISTER():
            self.register()
            return 1
        if KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(484, "Address Incomplete")
            return 1
        caller = self.authenticate_caller()
        if caller == -255:
            return 1
        KSR.hdr.remove("Route")
        if KSR.is_method_in("IS"):
            KSR.rr.record_route()
        if caller == OWN_USER:
            # The caller's proof was for us only; where the request goes is the chain's answer.
            KSR.hdr.remove("Proxy-Authorization")
            if self.route_own() == -255:
                return 1
        if not KSR.is_myself_ruri():
            return self.reply(403, "Not relaying")
        rc = KSR.registrar.lookup("location")
        if rc < 0:
            KSR.tm.t_newtran()
            KSR.sl.send_reply(405 if rc == -2 else 404, "Method Not Allowed" if rc == -2 else "Not Found")
            return 1
        self.relay()
        return 1

    def natdetect(self):
        KSR.force_rport()
        # 19: RFC 1918 contact | Via received | port mismatch; 64: arrived over WebSocket
        if KSR.nathelper.nat_uac_test(19) > 0 or KSR.nathelper.nat_uac_test(64) > 0:
            if KSR.is_REGISTER():
                KSR.nathelper.fix_nated_register()
            elif KSR.siputils.is_first_hop() > 0:
                KSR.nathelper.set_contact_alias()
            KSR.setflag(FLT_NATS)

    def within_dialog(self):
        if KSR.rr.loose_route() > 0:
            if not KSR.isdsturiset():
                KSR.nathelper.handle_ruri_alias()
            self.relay()
            return
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                self.relay()
            return
        KSR.sl.sl_send_reply(404, "Not here")

    def relay(self):
        if KSR.is_method_in("ISU") and KSR.tm.t_is_set("onreply_route") < 0:
            KSR.tm.t_on_reply("ksr_onreply_manage")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return -255

    # ------------------------------------------------------------ authentication
    def wants_bearer(self):
        supported = KSR.pv.gete("$hdr(Supported)") or ""
        return "krypton" in [s.strip().lower() for s in supported.split(",")]

    def contact_instance(self):
        contact = KSR.pv.gete("$hdr(Contact)") or ""
        key = "+sip.instance="
        i = contact.find(key)
        if i < 0:
            return None
        return contact[i + len(key):].split(";")[0].split(",")[0].strip().strip('"').strip("<>")

    def challenge(self, code):
        """401 (REGISTER) / 407: a Bearer challenge for KRYPTON phones, digest for everyone."""
        header = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
        if self.wants_bearer():
            # AUTH.md §4 nonce: b64url(ts ‖ HMAC-SHA256(key, ts ‖ Call-ID)), ts = 8-byte BE seconds;
            # the service checks it (and refuses ones dated before it started).
            ts = struct.pack(">Q", int(time.time()))
            call_id = (KSR.pv.get("$ci") or "").encode()
            tag = hmac.new(NONCE_KEY, ts + call_id, hashlib.sha256).digest()
            nonce = base64.urlsafe_b64encode(ts + tag).rstrip(b"=").decode()
            KSR.hdr.append_to_reply('%s: Bearer realm="%s", scope="krypton", nonce="%s"\r\n'
                                    % (header, REALM, nonce))
        KSR.auth.auth_challenge(REALM, 1)  # 1: qop=auth; 401 for REGISTER, else 407
        return -255

    def check_bearer(self, value, user, instance):
        try:
            status, body = self.service("POST", "/kemi/bearer", {
                "authorization": value, "user": user,
                "call_id": KSR.pv.get("$ci"), "instance": instance})
        except ServiceDown as e:
            return self.unavailable(e)
        if status != 200:
            return self.unavailable("bearer: HTTP %d" % status)
        if not body.get("ok"):
            return self.reply(int(body.get("code", 403)), "Forbidden", body.get("reason", "forbidden"))
        return 1

    def check_ephemeral(self, user):
        """Digest with `<expiry>:<address>` credentials (auth_ephemeral), then chain membership."""
        au = KSR.pv.get("$aU") or ""  # the whole user name ($au stops at ':')
        if ":" not in au or au.split(":", 1)[1] != user:
            return self.reply(403, "Forbidden", "the credentials are for another address")
        rc = KSR.auth_ephemeral.autheph_check(REALM)
        if rc < 0:
            KSR.auth.auth_challenge(REALM, 1 | (16 if rc == -4 else 0))  # 16: stale=true
            return -255
        try:
            status, body = self.service("POST", "/kemi/member", {"address": user})
        except ServiceDown as e:
            return self.unavailable(e)
        if status != 200:
            return self.unavailable("member: HTTP %d" % status)
        if not body.get("ok"):
            return self.reply(403, "Forbidden", body.get("reason", "forbidden"))
        return 1

    def authenticate(self, user, hdr, code, instance):
        value = (KSR.pv.gete("$hdr(%s)" % hdr) or "").strip()
        if value[:7].lower() == "bearer ":
            return self.check_bearer(value, user, instance)
        if value[:7].lower() == "digest ":
            return self.check_ephemeral(user)
        return self.challenge(code)

    def register(self):
        user = KSR.pv.get("$tU") or ""
        if self.authenticate(user, "Authorization", 401, self.contact_instance()) == -255:
            return
        if KSR.isflagset(FLT_NATS):
            KSR.setbflag(FLB_NATB)
        if KSR.registrar.save("location", 0) < 0:
            KSR.sl.sl_reply_error()

    def authenticate_caller(self):
        """OWN_USER: one of our users with a proof (a 407 challenge first). PEER: another deployed
        provider's request for one of our users (AUTH.md §6). -255: answered (refused)."""
        if KSR.is_myself_furi():
            user = KSR.pv.get("$fU") or ""
            if self.authenticate(user, "Proxy-Authorization", 407, None) == -255:
                return -255
            return OWN_USER
        token = (KSR.pv.gete("$hdr(Krypton-Provider)") or "").strip()
        try:
            status, body = self.service("POST", "/kemi/peer", {
                "token": token, "call_id": KSR.pv.get("$ci"), "to": KSR.pv.get("$rU") or ""})
        except ServiceDown as e:
            return self.unavailable(e)
        if status != 200:
            return self.unavailable("peer: HTTP %d" % status)
        if not body.get("ok"):
            return self.reply(int(body.get("code", 403)), "Forbidden", body.get("reason", "forbidden"))
        KSR.hdr.remove("Krypton-Provider")
        return PEER

    def route_own(self):
        """A request from one of our users: to another provider (with our Krypton-Provider
        token), to the PSTN trunk, or to our registrar (R-URI rewritten to our domain). -255 when
        relayed or answered."""
        try:
            status, body = self.service("POST", "/kemi/route", {
                "from": KSR.pv.get("$fU") or "", "to": KSR.pv.get("$rU") or "",
                "call_id": KSR.pv.get("$ci")})
        except ServiceDown as e:
            return self.unavailable(e)
        if status != 200:
            return self.unavailable("route: HTTP %d" % status)
        if not body.get("ok"):
            code = int(body.get("code", 404))
            return self.reply(code, "Not Found" if code == 404 else "Unavailable", body.get("reason"))
        KSR.pv.sets("$ru", body["uri"])
        if body["route"] == "local":
            return 1
        if body["route"] == "peer":
            KSR.hdr.append("%s\r\n" % body["header"])
        return self.relay()

    # ------------------------------------------------------------ replies, HTTP
    def ksr_onreply_manage(self, msg):
        scode = KSR.pv.get("$rs")
        if 100 < scode < 300 and KSR.isbflagset(FLB_NATB):
            KSR.nathelper.set_contact_alias()
        return 1

    # app_python3 5.6 calls this for every message sent; a missing method leaves a pending
    # exception that breaks the next KSR call (see ../shared/notes/sip-interop.md).
    def ksr_onsend_route(self, msg):
        return 1

    def ksr_reply_route(self, msg):
        return 1

    def ksr_xhttp_event(self, msg, evname):
        KSR.set_reply_close()
        KSR.set_reply_no_connect()
        if KSR.pv.get("$Rp") == RPC_PORT:
            # loopback-only JSON-RPC (the provider service removes bindings with ul.rm)
            if KSR.pv.get("$si") == "127.0.0.1":
                KSR.jsonrpcs.dispatch()
            else:
                KSR.xhttp.xhttp_reply(403, "Forbidden", "", "")
            return 1
        upg = (KSR.pv.gete("$hdr(Upgrade)") or "").lower()
        conn = (KSR.pv.gete("$hdr(Connection)") or "").lower()
        if "websocket" in upg and "upgrade" in conn and KSR.pv.get("$rm") == "GET":
            if KSR.websocket.handle_handshake() > 0:
                return 1
        path = KSR.pv.get("$hu") or ""
        if path.startswith("/krypton/v1/"):
            self.relay_api(path)
            return 1
        KSR.xhttp.xhttp_reply(404, "Not Found", "", "")
        return 1

    def relay_api(self, path):
        """The provider service's public API (nonce, credentials) on the SIP/WS port (AUTH.md §5)."""
        method = KSR.pv.get("$rm")
        body = KSR.pv.gete("$rb") or None
        try:
            status, answer = self.service(method, path, json.loads(body) if body else None)
        except (ServiceDown, ValueError) as e:
            KSR.xhttp.xhttp_reply(503, "Service Unavailable", "application/json",
                                  json.dumps({"error": "provider service unavailable: retry later"}))
            return
        KSR.xhttp.xhttp_reply(status, "OK" if status == 200 else "Error", "application/json", json.dumps(answer))

    def ksr_websocket_event(self, msg, evname):
        return 1
