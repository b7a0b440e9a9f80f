/** How many quality samples a call keeps for its graph. */
export const MAX_SAMPLES = 120;
/** Ended calls the view keeps (the call log itself is in the core's database: History). */
export const MAX_ENDED_CALLS = 10;
export function initialView() {
    return {
        registration: { state: "starting", text: "Starting the phone…" },
        registered: [],
        calls: [],
        messages: [],
        error: null,
    };
}
const num = (v) => (typeof v === "number" ? v : Number(v ?? NaN));
const str = (v) => (typeof v === "string" ? v : v === null || v === undefined ? "" : String(v));
function call(v, id) {
    return v.calls.find((c) => c.id === id);
}
function newCall(id, direction, peer, state) {
    return {
        id,
        direction,
        peer,
        state,
        establishedAt: null,
        held: false,
        remoteHold: false,
        muted: false,
        codec: null,
        quality: [],
        endText: null,
    };
}
const END_TEXT = {
    local_hangup: "You hung up",
    remote_hangup: "The other side hung up",
    busy: "Busy",
    declined: "Declined",
    timeout: "No answer",
    failed: "The call failed",
    media_failure: "The audio connection was lost",
};
/** Why a call ended, as a sentence. */
export function endText(reason, status, detail) {
    let s = END_TEXT[reason] ?? reason;
    if (status !== null && !Number.isNaN(status) && reason === "failed")
        s += ` (${status})`;
    if (detail)
        s += `: ${detail}`;
    return s;
}
/** Folds one phone event into the view; `now` is the caller's clock in ms. Returns `v`. */
export function applyEvent(v, e, now) {
    const id = num(e.call);
    switch (e.event) {
        case "ready":
            v.registration = { state: "starting", text: "Registering with your provider…" };
            break;
        case "registered":
            v.registration = { state: "registered", text: `Registered (${str(e.account)})` };
            if (!v.registered.includes(str(e.account)))
                v.registered.push(str(e.account));
            break;
        case "registration_failed": {
            v.registered = v.registered.filter((a) => a !== str(e.account));
            const retry = e.retry_in === null || e.retry_in === undefined ? "" : ` Retrying in ${Math.round(num(e.retry_in))} s.`;
            v.registration = { state: "failed", text: `Not registered: ${str(e.reason)}.${retry}` };
            break;
        }
        case "unregistered":
            v.registered = v.registered.filter((a) => a !== str(e.account));
            v.registration = { state: "unregistered", text: "Not registered" };
            break;
        case "calling": {
            const c = call(v, id);
            if (c)
                c.peer = str(e.to);
            else
                v.calls.push(newCall(id, "out", str(e.to), "calling"));
            break;
        }
        case "incoming":
            v.calls.push(newCall(id, "in", str(e.from), "incoming"));
            break;
        case "ringing": {
            const c = call(v, id);
            if (c && c.state === "calling")
                c.state = "ringing";
            break;
        }
        case "established": {
            const c = call(v, id);
            if (c) {
                c.state = "established";
                c.establishedAt = now;
                c.codec = str(e.codec) || null;
            }
            break;
        }
        case "held":
        case "resumed": {
            const c = call(v, id);
            if (c)
                c.held = e.event === "held";
            break;
        }
        case "remote_hold": {
            const c = call(v, id);
            if (c)
                c.remoteHold = e.on === true;
            break;
        }
        case "quality": {
            const c = call(v, id);
            const s = (e.stats ?? {});
            if (c && c.establishedAt !== null) {
                c.quality.push({ t: now - c.establishedAt, jitterMs: num(s.jitter_ms), loss: num(s.loss), mos: num(s.mos) });
                if (c.quality.length > MAX_SAMPLES)
                    c.quality.splice(0, c.quality.length - MAX_SAMPLES);
            }
            break;
        }
        case "ended": {
            const c = call(v, id);
            if (c) {
                c.state = "ended";
                const status = e.status === null || e.status === undefined ? null : num(e.status);
                c.endText = endText(str(e.reason), status, e.detail ? str(e.detail) : null);
            }
            const ended = v.calls.filter((x) => x.state === "ended");
            if (ended.length > MAX_ENDED_CALLS) {
                const drop = new Set(ended.slice(0, ended.length - MAX_ENDED_CALLS));
                v.calls = v.calls.filter((x) => !drop.has(x));
            }
            break;
        }
        case "message":
            v.messages.push({ id: null, direction: "in", peer: str(e.from), body: str(e.body), status: "received", reason: null });
            break;
        case "message_status": {
            const mid = num(e.id);
            // The core numbers a message when it first reports on it: the oldest one still
            // "sending" is that message (the core takes them in order).
            const m = v.messages.find((x) => x.direction === "out" && x.id === mid) ??
                v.messages.find((x) => x.direction === "out" && x.id === null);
            if (m) {
                m.id = mid;
                const st = str(e.status);
                m.status = st === "delivered" || st === "failed" || st === "pending" ? st : m.status;
                m.reason = e.reason ? str(e.reason) : null;
            }
            break;
        }
        case "error":
            v.error = str(e.message);
            break;
        case "audio_error":
            v.error = str(e.message);
            break;
        default:
            break;
    }
    return v;
}
/** Records a message the user sends, before the core reports on it. */
export function noteOutgoingMessage(v, to, body) {
    v.messages.push({ id: null, direction: "out", peer: to, body, status: "sending", reason: null });
    return v;
}
/** Records a local action on a call (mute), which the core does not echo as an event. */
export function setMuted(v, id, on) {
    const c = call(v, id);
    if (c)
        c.muted = on;
    return v;
}
/** The call the call screen shows: the newest one not ended (an incoming one first). */
export function currentCall(v) {
    const live = v.calls.filter((c) => c.state !== "ended");
    return live.find((c) => c.state === "incoming") ?? live[live.length - 1] ?? null;
}
/** The latest quality figures as one line. */
export function qualityText(q) {
    if (!q)
        return "Quality: measuring…";
    return `MOS ${q.mos.toFixed(1)} · jitter ${q.jitterMs.toFixed(1)} ms · loss ${(q.loss * 100).toFixed(1)} %`;
}
/** The MOS samples (1–4.5) as points of a `width`×`height` graph, oldest on the left. */
export function mosPoints(samples, width, height) {
    if (samples.length === 0)
        return [];
    const step = samples.length > 1 ? width / (samples.length - 1) : 0;
    return samples.map((s, i) => {
        const mos = Math.min(4.5, Math.max(1, Number.isFinite(s.mos) ? s.mos : 1));
        return [i * step, height - ((mos - 1) / 3.5) * height];
    });
}
/** Messages with one peer, in order (the peer as typed or as the core reported it). */
export function conversation(v, peer) {
    const p = peerKey(peer);
    return v.messages.filter((m) => peerKey(m.peer) === p);
}
/** A peer's address without `sip:`, `<>` or the domain: `sip:N…@host` and `N…` are one peer. */
export function peerKey(peer) {
    let p = peer.trim();
    const angle = p.match(/<([^>]*)>/);
    if (angle)
        p = angle[1];
    p = p.replace(/^sips?:/i, "");
    const at = p.indexOf("@");
    if (at >= 0)
        p = p.slice(0, at);
    return p;
}
/** Keys a dialer button adds: digits, `*`, `#`, `+`. */
export function dialKey(current, key) {
    return /^[0-9*#+]$/.test(key) ? current + key : current;
}
