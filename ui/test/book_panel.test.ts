// The History tab's formatting (ui/src/book_panel.ts): durations, missed calls, end reasons,
// times, and which contact a call-log entry belongs to.
import { describe, expect, it } from "vitest";
import type { CallRecord, Contact } from "../src/api.js";
import {
  callBackTarget,
  callDurationText,
  contactFor,
  endReasonText,
  isMissed,
  remoteUser,
  whenText,
} from "../src/book_panel.js";

const BOB = "NNLi44dJNXtDNSBkofB48aTVYtb1zZrNEs";

function call(over: Partial<CallRecord> = {}): CallRecord {
  return {
    id: 1,
    account: "krypton",
    direction: "out",
    remote: BOB,
    started_ms: 1_000,
    answered_ms: 3_000,
    ended_ms: 45_900,
    end_reason: "local_hangup",
    codec: "opus",
    mos: 4.3,
    ...over,
  };
}

const contacts: Contact[] = [
  { id: 1, name: "Bob", destination: BOB },
  { id: 2, name: "Alice", destination: "+31201234567" },
];

describe("call durations", () => {
  it("counts from the answer to the end, whole seconds", () => {
    expect(callDurationText(call())).toBe("0:42");
    expect(callDurationText(call({ answered_ms: 0, ended_ms: 3_723_000 }))).toBe("1:02:03");
  });
  it("says an unanswered call was not answered, and an unanswered incoming one was missed", () => {
    expect(callDurationText(call({ answered_ms: null }))).toBe("not answered");
    expect(isMissed(call({ answered_ms: null }))).toBe(false);
    const missed = call({ direction: "in", answered_ms: null, end_reason: "remote_hangup" });
    expect(isMissed(missed)).toBe(true);
    expect(callDurationText(missed)).toBe("missed");
  });
  it("never shows a negative duration from a clock step", () => {
    expect(callDurationText(call({ answered_ms: 10_000, ended_ms: 9_000 }))).toBe("0:00");
  });
});

describe("end reasons", () => {
  it("are words for people", () => {
    expect(endReasonText("remote_hangup")).toBe("they hung up");
    expect(endReasonText("timeout")).toBe("no answer");
    expect(endReasonText("media_failure")).toBe("no audio");
    expect(endReasonText("something_new")).toBe("something new");
  });
});

describe("whenText", () => {
  it("shows the time today and the date on other days", () => {
    const now = new Date(2024, 2, 5, 18, 0).getTime();
    expect(whenText(new Date(2024, 2, 5, 9, 7).getTime(), now)).toBe("09:07");
    expect(whenText(new Date(2024, 2, 4, 23, 59).getTime(), now)).toBe("2024-03-04 23:59");
    expect(whenText(new Date(2023, 11, 31, 0, 1).getTime(), now)).toBe("2023-12-31 00:01");
  });
});

describe("contacts for call-log entries", () => {
  it("finds the user of a SIP URI", () => {
    expect(remoteUser(`sip:${BOB}@127.0.0.1:5070`)).toBe(BOB);
    expect(remoteUser(`<sips:${BOB}@x;transport=tls>`)).toBe(BOB);
    expect(remoteUser(" +3120 ")).toBe("+3120");
  });
  it("matches by destination or by the URI's user", () => {
    expect(contactFor(contacts, BOB)?.name).toBe("Bob");
    expect(contactFor(contacts, `sip:${BOB}@provider.example`)?.name).toBe("Bob");
    expect(contactFor(contacts, "+31201234567")?.name).toBe("Alice");
    expect(contactFor(contacts, "+3120")).toBeUndefined();
    expect(contactFor([], BOB)).toBeUndefined();
  });
  it("calls back the contact's destination, else the remote as logged", () => {
    expect(callBackTarget(contacts, call({ remote: `sip:${BOB}@p` }))).toBe(BOB);
    expect(callBackTarget(contacts, call({ remote: "0612345678" }))).toBe("0612345678");
  });
});
