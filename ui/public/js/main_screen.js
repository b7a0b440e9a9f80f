// The main screen once the wallet is open: wallet (balances, history), providers (register
// with one, with progress until the transaction is in a block), phone (dialer, call screen
// with live quality, incoming calls) and messages. The core does the work; this shows it.
import { chain, settings, wallet, phone, } from "./api.js";
import { refreshBook, wireBook } from "./book_panel.js";
import { attempt, busy, el, input, showError, textEl } from "./dom.js";
import { applyEvent, conversation, currentCall, dialKey, initialView, mosPoints, noteOutgoingMessage, qualityText, setMuted, } from "./phone_view.js";
import { openReceive } from "./receive.js";
import { fillDevices, refreshSettings, wireSettings } from "./settings_panel.js";
import { formatDuration } from "./view.js";
const PANELS = ["wallet", "providers", "phone", "messages", "history", "settings"];
/** How often the main screen asks whether the wallet auto-locked. */
const LOCK_CHECK_MS = 5000;
let view = initialView();
let phoneRunning = false;
let wired = false;
let timer;
function selectPanel(p) {
    for (const x of PANELS) {
        el(`panel-${x}`).hidden = x !== p;
        el(`nav-${x}`).setAttribute("aria-selected", String(x === p));
    }
    if (p === "providers")
        void refreshProviders();
    if (p === "wallet")
        void refreshWallet();
    if (p === "settings")
        void refreshSettings();
    if (p === "history")
        void refreshBook();
}
/** Shows the main screen for the wallet `s`. */
export function openMain(s) {
    el("main-state").textContent = s.state === "unlocked" ? "unlocked" : "locked";
    renderAddresses(s);
    if (!wired)
        wire();
    watchLock();
    openReceive(s);
    selectPanel("wallet");
    if (s.state === "unlocked")
        void startPhoneIfRegistered();
}
// ---- wallet ----
function renderAddresses(s) {
    el("main-addresses").replaceChildren(...s.accounts.map((a) => {
        const li = document.createElement("li");
        li.dataset.address = a.address;
        li.append(textEl("code", a.address), ` ${a.label}${a.isDefault ? " (default)" : ""}${a.watchOnly ? " (watch-only)" : ""} `);
        if (!a.isDefault && !a.watchOnly) {
            const b = textEl("button", "Make default");
            b.type = "button";
            b.className = "make-default";
            b.addEventListener("click", () => void makeDefault(a.address));
            li.append(b);
        }
        return li;
    }));
}
/** The wallet changed (an address added, another default): show it everywhere. */
function walletChanged(s) {
    renderAddresses(s);
    openReceive(s);
    void refreshWallet();
    // the phone's accounts follow the wallet's addresses (the default first)
    if (phoneRunning)
        void startPhone();
    else
        void startPhoneIfRegistered();
}
async function makeDefault(address) {
    const s = await busy("Changing the default address…", () => wallet.setDefault(address));
    if (s)
        walletChanged(s);
}
let lockWatch;
/** Notices the core's auto-lock (Settings → Security): when the keys have been dropped and
 * no call is in progress, the app asks for the password again (`krypton:locked`, main.ts). */
function watchLock() {
    window.clearInterval(lockWatch);
    lockWatch = window.setInterval(async () => {
        if (el("main-screen").hidden || currentCall(view))
            return;
        const s = await wallet.status().catch(() => undefined);
        if (s && s.state !== "unlocked") {
            window.clearInterval(lockWatch);
            document.dispatchEvent(new CustomEvent("krypton:locked", { detail: s }));
        }
    }, LOCK_CHECK_MS);
}
async function refreshWallet() {
    try {
        const st = await chain.status();
        el("network-line").textContent = `Network ${st.network} · block ${st.height} · ${st.rpc}`;
        const b = await chain.balances();
        el("balance-gas").textContent = b.gas;
        el("balance-neo").textContent = b.neo;
        renderHistory(await chain.history());
    }
    catch (e) {
        el("network-line").textContent = `The chain cannot be reached: ${String(e)}`;
    }
}
function renderHistory(items) {
    el("history-list").replaceChildren(...items.map((h) => {
        const li = textEl("li", `#${h.block} ${h.summary}${h.gas ? ` (${h.gas} GAS)` : ""} `);
        li.dataset.tx = h.tx;
        li.dataset.kind = h.kind;
        li.append(textEl("code", h.tx));
        return li;
    }));
}
// ---- providers ----
async function refreshProviders() {
    const r = await attempt(async () => ({ reg: await chain.registration(), list: await chain.providers() }));
    if (!r)
        return;
    el("registration-line").textContent = r.reg
        ? `Registered with ${r.reg.provider} (${r.reg.location}).`
        : "Not registered with a provider yet: pick one below.";
    el("unregister").hidden = r.reg === null;
    el("provider-list").replaceChildren(...r.list.map((p) => {
        const li = document.createElement("li");
        li.dataset.provider = p.address;
        const text = document.createElement("span");
        text.append(textEl("code", p.address), ` ${p.location}`);
        const b = textEl("button", r.reg?.provider === p.address ? "Registered" : "Register");
        b.type = "button";
        b.className = "register";
        b.disabled = r.reg?.provider === p.address;
        b.addEventListener("click", () => void register(p.address));
        li.append(text, b);
        return li;
    }));
}
function stepText(s) {
    switch (s.step) {
        case "preparing":
            return `${s.text[0].toUpperCase()}${s.text.slice(1)}…`;
        case "signed":
            return `Signed ${s.txid}; fees ${s.fees} GAS`;
        case "submitted":
            return `Sent; waiting for a block (valid until block ${s.validUntilBlock})…`;
        case "confirmed":
            return `Confirmed in block ${s.block}`;
    }
}
async function runTx(what, send, list = "tx-progress") {
    const steps = el(list);
    steps.replaceChildren();
    steps.hidden = false;
    const r = await busy(what, () => send((s) => {
        const li = textEl("li", stepText(s));
        li.dataset.step = s.step;
        steps.append(li);
    }));
    return r !== undefined;
}
async function register(provider) {
    const ok = await runTx("Registering on chain…", (onStep) => chain.register(provider, onStep));
    await refreshProviders();
    if (ok)
        await startPhone();
}
// ---- phone ----
async function startPhoneIfRegistered() {
    try {
        if (await chain.registration())
            await startPhone();
    }
    catch {
        // no chain yet: the wallet panel says so
    }
}
/** Which phone_start the view follows: a replaced phone still reports its last events
 * (unregistered, ended) on its own channel, and they must not reach the new phone's view. */
let phoneGeneration = 0;
async function startPhone() {
    const generation = ++phoneGeneration;
    view = initialView();
    // events may arrive before phone_start answers: show them from now on
    phoneRunning = true;
    render();
    const started = await attempt(() => phone.start((e) => {
        if (generation === phoneGeneration)
            onPhoneEvent(e);
    }));
    if (generation !== phoneGeneration)
        return;
    if (!started) {
        phoneRunning = false;
        el("phone-status").textContent = "The phone is not running: see the message above.";
        el("phone-status").dataset.state = "stopped";
        return;
    }
    if (view.registration.state === "starting")
        el("phone-status").textContent = `Registering ${started.aor}…`;
}
function onPhoneEvent(e) {
    applyEvent(view, e, Date.now());
    if (e.event === "error" || e.event === "audio_error")
        showError(view.error);
    if (e.event === "incoming")
        selectPanel("phone");
    if (e.event === "device_changed") {
        const d = e.device;
        const note = el("call-devices-note");
        note.textContent = `Now using ${d?.name ?? "the chosen device"} (${String(e.direction)}).`;
        note.dataset.state = "changed";
    }
    // the core wrote the call to its log before this event
    if (e.event === "ended")
        void refreshBook();
    render();
}
function render() {
    if (phoneRunning) {
        el("phone-status").textContent = view.registration.text;
        el("phone-status").dataset.state = view.registration.state;
        el("phone-status").dataset.accounts = view.registered.join(" ");
    }
    const c = currentCall(view);
    el("incoming-panel").hidden = !(c && c.state === "incoming");
    if (c && c.state === "incoming")
        el("incoming-from").textContent = c.peer;
    el("call-panel").hidden = !c || c.state === "incoming";
    if (c && c.state !== "incoming") {
        el("call-panel").dataset.call = String(c.id);
        el("call-peer").textContent = c.peer;
        const state = c.state === "established" ? (c.held ? "on hold" : c.remoteHold ? "held by the other side" : "in call") : c.state;
        el("call-state").textContent = state;
        el("call-state").dataset.state = c.state;
        el("call-mute").textContent = c.muted ? "Unmute" : "Mute";
        el("call-hold").textContent = c.held ? "Resume" : "Hold";
        const last = c.quality[c.quality.length - 1];
        el("call-quality").textContent = c.state === "established" ? qualityText(last) : "";
        el("call-quality").dataset.samples = String(c.quality.length);
        drawGraph(c.quality);
    }
    const ended = [...view.calls].reverse().find((x) => x.state === "ended");
    el("call-ended").hidden = c !== null || !ended;
    if (ended)
        el("call-ended").textContent = `Last call with ${ended.peer}: ${ended.endText ?? "ended"}`;
    tick();
    renderMessages();
}
function tick() {
    const c = currentCall(view);
    if (c && c.establishedAt !== null) {
        el("call-timer").textContent = formatDuration((Date.now() - c.establishedAt) / 1000);
        if (timer === undefined)
            timer = window.setInterval(tick, 500);
    }
    else if (timer !== undefined) {
        window.clearInterval(timer);
        timer = undefined;
    }
}
function drawGraph(samples) {
    const canvas = el("quality-graph");
    const g = canvas.getContext("2d");
    if (!g)
        return;
    g.clearRect(0, 0, canvas.width, canvas.height);
    const pts = mosPoints(samples, canvas.width, canvas.height);
    if (pts.length === 0)
        return;
    g.strokeStyle = "#5b3cc4";
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach(([x, y], i) => (i === 0 ? g.moveTo(x, y) : g.lineTo(x, y)));
    g.stroke();
}
function callAction(make) {
    const c = currentCall(view);
    if (c)
        void attempt(() => phone.send(make(c.id)));
}
// ---- messages ----
function renderMessages() {
    const peer = input("msg-to").value.trim();
    const list = peer ? conversation(view, peer) : view.messages;
    el("msg-list").replaceChildren(...list.map((m) => {
        const li = textEl("li", "", m.direction);
        li.dataset.status = m.status;
        li.append(textEl("span", `${m.direction === "in" ? `${m.peer}: ` : ""}${m.body}`, "body"), textEl("span", m.direction === "out" ? ` · ${m.status}${m.reason && m.status === "failed" ? ` (${m.reason})` : ""}` : "", "status"));
        return li;
    }));
}
// ---- wiring ----
function wire() {
    wired = true;
    wireBook();
    // New accounts, rules or devices take effect when the phone starts again.
    wireSettings(() => {
        if (phoneRunning)
            void startPhone();
    });
    for (const p of PANELS)
        el(`nav-${p}`).addEventListener("click", () => selectPanel(p));
    el("wallet-refresh").addEventListener("click", () => void refreshWallet());
    el("add-address-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const pw = input("add-address-password");
        const password = pw.value;
        pw.value = "";
        if (!password)
            return showError("Enter the wallet's password to add an address.");
        const s = await busy("Adding an address (scrypt)…", () => wallet.addAccount(password, input("add-address-label").value));
        if (!s)
            return;
        input("add-address-label").value = "";
        el("add-address").open = false;
        walletChanged(s);
    });
    let preview;
    el("send-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const to = input("send-to").value.trim();
        const amount = input("send-amount").value.trim();
        if (!to || !amount)
            return showError("Enter the address to send to and the amount of GAS.");
        preview = await busy("Preparing the transfer and its fees…", () => chain.sendPrepare(to, amount));
        if (!preview)
            return;
        el("send-preview-amount").textContent = preview.amount;
        el("send-preview-to").textContent = preview.to;
        el("send-preview-fees").textContent = preview.fees;
        el("send-preview-total").textContent = preview.total;
        el("send-preview").hidden = false;
    });
    el("send-cancel").addEventListener("click", async () => {
        preview = undefined;
        el("send-preview").hidden = true;
        await attempt(() => chain.sendCancel());
    });
    el("send-confirm").addEventListener("click", async () => {
        if (!preview)
            return;
        const id = preview.id;
        preview = undefined;
        el("send-preview").hidden = true;
        if (await runTx("Sending GAS…", (onStep) => chain.sendConfirm(id, onStep), "send-progress")) {
            input("send-amount").value = "";
            await refreshWallet();
        }
    });
    el("providers-refresh").addEventListener("click", () => void refreshProviders());
    el("unregister").addEventListener("click", async () => {
        if (await runTx("Unregistering on chain…", (onStep) => chain.unregister(onStep))) {
            await attempt(() => phone.stop());
            phoneRunning = false;
        }
        await refreshProviders();
    });
    const keypad = el("keypad");
    for (const k of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]) {
        const b = textEl("button", k);
        b.type = "button";
        b.dataset.key = k;
        b.addEventListener("click", () => {
            const c = currentCall(view);
            if (c && c.state === "established")
                void attempt(() => phone.send({ cmd: "dtmf", call: c.id, digits: k }));
            else
                input("dial-to").value = dialKey(input("dial-to").value, k);
        });
        keypad.append(b);
    }
    el("dial-form").addEventListener("submit", (ev) => {
        ev.preventDefault();
        const to = input("dial-to").value.trim();
        if (!to)
            return showError("Enter a number, a NEO address or a SIP address to call.");
        if (!phoneRunning)
            return showError("The phone is not running: register with a provider first (Providers).");
        void attempt(() => phone.send({ cmd: "call", to }));
    });
    el("incoming-answer").addEventListener("click", () => callAction((call) => ({ cmd: "answer", call })));
    el("incoming-decline").addEventListener("click", () => callAction((call) => ({ cmd: "hangup", call })));
    el("call-hangup").addEventListener("click", () => callAction((call) => ({ cmd: "hangup", call })));
    el("call-hold").addEventListener("click", () => {
        const c = currentCall(view);
        if (c)
            void attempt(() => phone.send({ cmd: c.held ? "resume" : "hold", call: c.id }));
    });
    // Switching the sound device during a call (Settings keeps the one calls start with).
    el("call-devices").addEventListener("toggle", async () => {
        if (!el("call-devices").open)
            return;
        const d = await attempt(() => settings.audioDevices());
        fillDevices(el("call-input"), d?.inputs ?? [], "default");
        fillDevices(el("call-output"), d?.outputs ?? [], "default");
    });
    for (const [id, dir] of [["call-input", "input"], ["call-output", "output"]]) {
        el(id).addEventListener("change", () => {
            el("call-devices-note").dataset.state = "asked";
            const device = el(id).value;
            void attempt(() => phone.send(dir === "input" ? { cmd: "set_device", input: device } : { cmd: "set_device", output: device }));
        });
    }
    el("call-mute").addEventListener("click", () => {
        const c = currentCall(view);
        if (!c)
            return;
        const on = !c.muted;
        void attempt(async () => {
            await phone.send({ cmd: "mute", call: c.id, on });
            setMuted(view, c.id, on);
            render();
        });
    });
    el("msg-form").addEventListener("submit", (ev) => {
        ev.preventDefault();
        const to = input("msg-to").value.trim();
        const body = input("msg-body").value;
        if (!to || !body.trim())
            return showError("Enter who the message is for and the message.");
        if (!phoneRunning)
            return showError("The phone is not running: register with a provider first (Providers).");
        noteOutgoingMessage(view, to, body);
        input("msg-body").value = "";
        render();
        void attempt(() => phone.send({ cmd: "message", to, body }));
    });
    input("msg-to").addEventListener("input", renderMessages);
}
