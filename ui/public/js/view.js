// Display logic without the DOM or IPC (unit-testable, ui/test/view.test.ts): amounts, call
// timers, what a dialled destination is. Amounts stay integers (BigInt) from the core's string to
// the screen: no floating point ever touches a balance or a fee.
/** GAS has 8 decimals (1 GAS = 10^8 datoshi); NEO has none. */
export const GAS_DECIMALS = 8;
export const NEO_DECIMALS = 0;
/** An integer amount in the token's smallest unit ("150000000", as the core sends it) as text
 *  for people: "1.5" for GAS. Trailing zeros go; no rounding. Throws on anything but an integer. */
export function formatUnits(units, decimals = GAS_DECIMALS) {
    const n = typeof units === "bigint" ? units : parseInteger(units);
    const negative = n < 0n;
    const digits = (negative ? -n : n).toString().padStart(decimals + 1, "0");
    const whole = digits.slice(0, digits.length - decimals);
    const frac = digits.slice(digits.length - decimals).replace(/0+$/, "");
    return `${negative ? "-" : ""}${whole}${frac ? `.${frac}` : ""}`;
}
function parseInteger(s) {
    if (!/^-?\d+$/.test(s))
        throw new Error(`not an integer amount: ${JSON.stringify(s)}`);
    return BigInt(s);
}
/** An amount typed by the user ("1.5", "0,25", " 2 ") in the smallest unit, or why it cannot be
 *  sent. */
export function parseAmount(text, decimals = GAS_DECIMALS) {
    const t = text.trim().replace(",", ".");
    const problem = (p) => ({ units: null, problem: p });
    if (t === "")
        return problem("Enter an amount.");
    const m = /^(\d*)(?:\.(\d*))?$/.exec(t);
    if (!m || (m[1] === "" && !m[2]))
        return problem("Enter the amount as a number, such as 1.5.");
    const frac = m[2] ?? "";
    if (frac.length > decimals) {
        return problem(decimals === 0
            ? "This token cannot be divided: enter a whole number."
            : `Use at most ${decimals} digits after the point.`);
    }
    const units = BigInt((m[1] || "0") + frac.padEnd(decimals, "0"));
    if (units === 0n)
        return problem("Enter an amount greater than 0.");
    return { units, problem: null };
}
/** A call's duration as a timer: 0:07, 12:34, 1:02:03. */
export function formatDuration(seconds) {
    const s = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
const ADDRESS = /^N[1-9A-HJ-NP-Za-km-z]{33}$/;
/** The shape of an N3 address (N + 33 base58 characters); the core checks its checksum. */
export function looksLikeAddress(text) {
    return ADDRESS.test(text.trim());
}
export function destinationKind(text) {
    const t = text.trim();
    if (t === "")
        return null;
    if (ADDRESS.test(t))
        return "address";
    if (/^sips?:[^@\s]+(@[^\s]+)?$/i.test(t))
        return "sip";
    // a number: digits, optionally a leading +, with the usual separators people type
    const digits = t.replace(/[\s().-]/g, "");
    if (/^\+?[0-9*#]+$/.test(digits))
        return digits.replace(/[^0-9]/g, "").length > 0 ? "number" : null;
    if (/^[A-Za-z0-9._~-]+$/.test(t))
        return "name";
    return null;
}
