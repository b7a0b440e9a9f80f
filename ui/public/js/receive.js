// The Receive block of the Wallet panel: one of the wallet's addresses, a Copy button, an
// optional GAS amount, and the `neo:` URI as a QR code that the core made (wallet_receive). The
// QR code is drawn on a <canvas> from the core's modules; nothing is set as HTML.
import { wallet } from "./api.js";
import { attempt, el, input, textEl } from "./dom.js";
/** Light modules around the code, as the QR standard asks (4). */
export const QUIET_ZONE = 4;
/** Why `qr` is not a QR code's module grid (versions 1–40: 21…177 modules a side), or null. */
export function qrProblem(qr) {
    const { size, modules } = qr;
    if (!Number.isInteger(size) || size < 21 || size > 177 || (size - 17) % 4 !== 0) {
        return `a QR code has 21 to 177 modules a side (17 + 4 × version), not ${String(size)}`;
    }
    if (typeof modules !== "string" || modules.length !== size * size) {
        return `a ${size} × ${size} QR code has ${size * size} modules`;
    }
    if (!/^[01]*$/.test(modules))
        return "QR modules are 0 (light) or 1 (dark)";
    return null;
}
/** The dark runs of `qr` as rectangles, shifted by the quiet zone; throws on a bad grid. */
export function qrRects(qr, quiet = QUIET_ZONE) {
    const problem = qrProblem(qr);
    if (problem)
        throw new Error(problem);
    const rects = [];
    for (let y = 0; y < qr.size; y++) {
        let x = 0;
        while (x < qr.size) {
            if (qr.modules[y * qr.size + x] !== "1") {
                x++;
                continue;
            }
            const start = x;
            while (x < qr.size && qr.modules[y * qr.size + x] === "1")
                x++;
            rects.push({ x: start + quiet, y: y + quiet, w: x - start, h: 1 });
        }
    }
    return rects;
}
/** Pixels per module so the code with its quiet zone fits in `maxPixels` (at least 1). */
export function moduleScale(size, maxPixels, quiet = QUIET_ZONE) {
    return Math.max(1, Math.floor(maxPixels / (size + 2 * quiet)));
}
/** Draws `qr` on `canvas`: white background (the quiet zone), black modules. */
export function drawQr(canvas, qr, maxPixels = 240) {
    const rects = qrRects(qr);
    const scale = moduleScale(qr.size, maxPixels);
    const side = (qr.size + 2 * QUIET_ZONE) * scale;
    canvas.width = side;
    canvas.height = side;
    const g = canvas.getContext("2d");
    if (!g)
        return;
    g.fillStyle = "#fff";
    g.fillRect(0, 0, side, side);
    g.fillStyle = "#000";
    for (const r of rects)
        g.fillRect(r.x * scale, r.y * scale, r.w * scale, r.h * scale);
}
let wired = false;
/** Fills the Receive block for the wallet `s` (its default address first). */
export function openReceive(s) {
    if (!wired)
        wire();
    const select = el("receive-account");
    const addresses = s.accounts.map((a) => a.address);
    const first = s.defaultAddress ?? addresses[0] ?? "";
    const ordered = [first, ...addresses.filter((a) => a !== first)].filter((a) => a !== "");
    select.replaceChildren(...ordered.map((a) => {
        const o = textEl("option", a);
        o.value = a;
        return o;
    }));
    void showReceive();
}
async function showReceive() {
    const address = el("receive-account").value;
    if (!address)
        return;
    const amount = input("receive-amount").value.trim();
    const r = await attempt(() => wallet.receive(address, amount === "" ? null : amount));
    if (!r)
        return;
    el("receive-address").textContent = r.address;
    el("receive-uri").textContent = r.uri;
    el("receive-copied").textContent = "";
    drawQr(el("receive-qr"), r.qr);
}
async function copyAddress() {
    const address = el("receive-address").textContent ?? "";
    const note = el("receive-copied");
    try {
        await navigator.clipboard.writeText(address);
        note.textContent = "Copied.";
    }
    catch {
        // no clipboard permission in this webview: select it for Ctrl+C instead
        const range = document.createRange();
        range.selectNodeContents(el("receive-address"));
        const sel = window.getSelection();
        sel?.removeAllRanges();
        sel?.addRange(range);
        note.textContent = "Selected: press Ctrl+C to copy.";
    }
}
function wire() {
    wired = true;
    el("receive-account").addEventListener("change", () => void showReceive());
    el("receive-form").addEventListener("submit", (ev) => {
        ev.preventDefault();
        void showReceive();
    });
    el("receive-copy").addEventListener("click", () => void copyAddress());
}
