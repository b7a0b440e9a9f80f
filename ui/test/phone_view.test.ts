// The phone's view state (ui/src/phone_view.ts), folded from the core's events as
// `krypton phone` prints them (krypton-core PhoneEvent).
import { describe, expect, it } from "vitest";
import {
  MAX_ENDED_CALLS,
  MAX_SAMPLES,
  applyEvent,
  conversation,
  currentCall,
  dialKey,
  endText,
  initialView,
  mosPoints,
  noteOutgoingMessage,
  peerKey,
  qualityText,
  setMuted,
} from "../src/phone_view.js";

const BOB = "NXV7ZhHiyM1aHXwpVsRZC6BwNFP2jghXAq";

describe("registration", () => {
  it("follows registered, failed with a retry, and unregistered", () => {
    const v = initialView();
    expect(v.registration.state).toBe("starting");
    applyEvent(v, { event: "registered", account: BOB, expires: 60 }, 0);
    expect(v.registration).toEqual({ state: "registered", text: `Registered (${BOB})` });
    applyEvent(v, { event: "registration_failed", account: BOB, status: 503, reason: "the provider is down", retry_in: 4.2 }, 0);
    expect(v.registration.state).toBe("failed");
    expect(v.registration.text).toBe("Not registered: the provider is down. Retrying in 4 s.");
    applyEvent(v, { event: "registration_failed", account: BOB, status: 403, reason: "not registered on chain", retry_in: null }, 0);
    expect(v.registration.text).toBe("Not registered: not registered on chain.");
    applyEvent(v, { event: "unregistered", account: BOB }, 0);
    expect(v.registration.state).toBe("unregistered");
  });
});

describe("calls", () => {
  it("goes calling → ringing → established → ended with the reason", () => {
    const v = initialView();
    applyEvent(v, { event: "calling", call: 1, account: "a", to: BOB }, 0);
    expect(currentCall(v)?.state).toBe("calling");
    applyEvent(v, { event: "ringing", call: 1 }, 10);
    expect(currentCall(v)?.state).toBe("ringing");
    applyEvent(v, { event: "established", call: 1, codec: "opus", echo_cancellation: false }, 1000);
    const c = currentCall(v)!;
    expect(c.state).toBe("established");
    expect(c.establishedAt).toBe(1000);
    expect(c.codec).toBe("opus");
    applyEvent(v, { event: "held", call: 1 }, 0);
    expect(c.held).toBe(true);
    applyEvent(v, { event: "resumed", call: 1 }, 0);
    expect(c.held).toBe(false);
    applyEvent(v, { event: "remote_hold", call: 1, on: true }, 0);
    expect(c.remoteHold).toBe(true);
    setMuted(v, 1, true);
    expect(c.muted).toBe(true);
    applyEvent(v, { event: "ended", call: 1, reason: "remote_hangup", status: null, detail: null, duration: 3, stats: null }, 0);
    expect(currentCall(v)).toBeNull();
    expect(v.calls[0].endText).toBe("The other side hung up");
  });

  it("a failover keeps one call and shows the new destination", () => {
    const v = initialView();
    applyEvent(v, { event: "calling", call: 4, account: "a", to: "+31201234567" }, 0);
    applyEvent(v, { event: "failover", call: 4, from_account: "a", reason: "503" }, 0);
    applyEvent(v, { event: "calling", call: 4, account: "b", to: "0031201234567" }, 0);
    expect(v.calls).toHaveLength(1);
    expect(v.calls[0].peer).toBe("0031201234567");
  });

  it("shows an incoming call first, even during another call", () => {
    const v = initialView();
    applyEvent(v, { event: "calling", call: 1, account: "a", to: BOB }, 0);
    applyEvent(v, { event: "established", call: 1, codec: "pcmu" }, 0);
    applyEvent(v, { event: "incoming", call: 2, account: "a", from: "sip:carol@x" }, 0);
    expect(currentCall(v)?.id).toBe(2);
    expect(currentCall(v)?.direction).toBe("in");
    applyEvent(v, { event: "ended", call: 2, reason: "declined", status: 603, detail: null }, 0);
    expect(currentCall(v)?.id).toBe(1);
  });

  it("events for unknown calls change nothing", () => {
    const v = initialView();
    applyEvent(v, { event: "established", call: 9, codec: "opus" }, 0);
    applyEvent(v, { event: "quality", call: 9, stats: { mos: 4 } }, 0);
    applyEvent(v, { event: "ended", call: 9, reason: "failed" }, 0);
    expect(v.calls).toEqual([]);
  });

  it("says why a call ended, with the status for failures", () => {
    expect(endText("failed", 488, "no common codec")).toBe("The call failed (488): no common codec");
    expect(endText("busy", 486, null)).toBe("Busy");
    expect(endText("something_new", null, null)).toBe("something_new");
  });
});

describe("quality", () => {
  it("keeps samples per call, timed from establishment, at most MAX_SAMPLES", () => {
    const v = initialView();
    applyEvent(v, { event: "calling", call: 1, account: "a", to: BOB }, 0);
    // before the call is up there is nothing to time a sample against
    applyEvent(v, { event: "quality", call: 1, stats: { mos: 4, jitter_ms: 1, loss: 0 } }, 500);
    expect(v.calls[0].quality).toEqual([]);
    applyEvent(v, { event: "established", call: 1, codec: "opus" }, 1000);
    applyEvent(v, { event: "quality", call: 1, stats: { mos: 4.3, jitter_ms: 2.5, loss: 0.01 } }, 2000);
    expect(v.calls[0].quality).toEqual([{ t: 1000, jitterMs: 2.5, loss: 0.01, mos: 4.3 }]);
    for (let i = 0; i < MAX_SAMPLES + 5; i++) {
      applyEvent(v, { event: "quality", call: 1, stats: { mos: 4, jitter_ms: i, loss: 0 } }, 3000 + i);
    }
    expect(v.calls[0].quality).toHaveLength(MAX_SAMPLES);
    expect(v.calls[0].quality[MAX_SAMPLES - 1].jitterMs).toBe(MAX_SAMPLES + 4);
  });

  it("writes the latest figures as one line", () => {
    expect(qualityText(undefined)).toBe("Quality: measuring…");
    expect(qualityText({ t: 0, mos: 4.26, jitterMs: 3.04, loss: 0.0125 })).toBe("MOS 4.3 · jitter 3.0 ms · loss 1.3 %");
  });

  it("draws MOS 1 at the bottom and 4.5 at the top, clamping the rest", () => {
    const s = (mos: number) => ({ t: 0, mos, jitterMs: 0, loss: 0 });
    expect(mosPoints([], 300, 60)).toEqual([]);
    expect(mosPoints([s(4.5)], 300, 60)).toEqual([[0, 0]]);
    expect(mosPoints([s(1), s(4.5), s(9), s(NaN)], 300, 60)).toEqual([
      [0, 60],
      [100, 0],
      [200, 0],
      [300, 60],
    ]);
  });
});

describe("messages", () => {
  it("binds the core's status to the message sent, in order", () => {
    const v = initialView();
    noteOutgoingMessage(v, BOB, "first");
    noteOutgoingMessage(v, BOB, "second");
    expect(v.messages.map((m) => m.status)).toEqual(["sending", "sending"]);
    applyEvent(v, { event: "message_status", id: 7, to: `sip:${BOB}@127.0.0.1:5070`, status: "pending", code: null, reason: "" }, 0);
    applyEvent(v, { event: "message_status", id: 8, to: `sip:${BOB}@127.0.0.1:5070`, status: "delivered", code: 200, reason: "OK" }, 0);
    applyEvent(v, { event: "message_status", id: 7, to: `sip:${BOB}@127.0.0.1:5070`, status: "failed", code: 404, reason: "Not Found" }, 0);
    expect(v.messages.map((m) => [m.id, m.body, m.status])).toEqual([
      [7, "first", "failed"],
      [8, "second", "delivered"],
    ]);
    expect(v.messages[0].reason).toBe("Not Found");
  });

  it("keeps received text as it came and groups a conversation by peer", () => {
    const v = initialView();
    const body = "<img src=x onerror=alert(1)>";
    applyEvent(v, { event: "message", account: "a", from: `"Bob" <sip:${BOB}@127.0.0.1:5070>`, body }, 0);
    noteOutgoingMessage(v, BOB, "hi");
    noteOutgoingMessage(v, "carol", "other");
    expect(v.messages[0]).toMatchObject({ direction: "in", body, status: "received" });
    expect(conversation(v, BOB).map((m) => m.body)).toEqual([body, "hi"]);
    expect(conversation(v, `sip:${BOB}@elsewhere`)).toHaveLength(2);
  });

  it("reduces a peer to its user part", () => {
    expect(peerKey(`sip:${BOB}@127.0.0.1:5070`)).toBe(BOB);
    expect(peerKey(`"Bob" <sips:${BOB}@x;transport=tls>`)).toBe(BOB);
    expect(peerKey(` ${BOB} `)).toBe(BOB);
  });
});

describe("errors and the dialer", () => {
  it("remembers the core's last error", () => {
    const v = initialView();
    applyEvent(v, { event: "error", message: "no route for 12: add a dial plan rule" }, 0);
    expect(v.error).toBe("no route for 12: add a dial plan rule");
    applyEvent(v, { event: "audio_error", message: "no microphone: plug one in" }, 0);
    expect(v.error).toBe("no microphone: plug one in");
  });

  it("adds only dialable keys", () => {
    expect(dialKey("+3", "1")).toBe("+31");
    expect(dialKey("", "#")).toBe("#");
    expect(dialKey("12", "x")).toBe("12");
    expect(dialKey("12", "12")).toBe("12");
  });
});

describe("many calls", () => {
  it("keeps only the newest ended calls, never a live one", () => {
    const v = initialView();
    applyEvent(v, { event: "incoming", call: 1000, account: BOB, from: BOB }, 0);
    for (let id = 1; id <= MAX_ENDED_CALLS + 25; id++) {
      applyEvent(v, { event: "calling", call: id, account: BOB, to: BOB }, 0);
      applyEvent(v, { event: "ended", call: id, reason: "local_hangup", status: null }, 0);
    }
    const ended = v.calls.filter((c) => c.state === "ended").map((c) => c.id);
    expect(ended.length).toBe(MAX_ENDED_CALLS);
    expect(ended[ended.length - 1]).toBe(MAX_ENDED_CALLS + 25);
    expect(currentCall(v)?.id).toBe(1000);
  });
});

describe("several accounts", () => {
  it("lists the accounts registered now", () => {
    const v = initialView();
    applyEvent(v, { event: "registered", account: "A", expires: 60 }, 0);
    applyEvent(v, { event: "registered", account: "B", expires: 60 }, 0);
    applyEvent(v, { event: "registered", account: "A", expires: 60 }, 0);
    expect(v.registered).toEqual(["A", "B"]);
    applyEvent(v, { event: "registration_failed", account: "A", status: 503, reason: "down", retry_in: 1 }, 0);
    expect(v.registered).toEqual(["B"]);
    applyEvent(v, { event: "unregistered", account: "B" }, 0);
    expect(v.registered).toEqual([]);
  });
});
