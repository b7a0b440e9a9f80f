// DOM helpers shared by the screens: element lookup, the error line and the progress indicator.
import { errorText } from "./forms.js";
export function el(id) {
    const e = document.getElementById(id);
    if (!e)
        throw new Error(`#${id} missing in index.html`);
    return e;
}
export const input = (id) => el(id);
export function showError(message) {
    const box = el("error");
    box.textContent = message ?? "";
    box.hidden = message === null;
}
/** Runs a core call with the progress indicator on and the forms disabled. */
export async function busy(text, work) {
    showError(null);
    el("busy-text").textContent = text;
    el("busy").hidden = false;
    const buttons = [...document.querySelectorAll("button")];
    const wasDisabled = buttons.map((b) => b.disabled);
    buttons.forEach((b) => (b.disabled = true));
    try {
        return await work();
    }
    catch (e) {
        showError(errorText(e));
        return undefined;
    }
    finally {
        el("busy").hidden = true;
        buttons.forEach((b, i) => (b.disabled = wasDisabled[i]));
    }
}
/** Runs a quick core call (a phone action) without freezing the screen; errors go to the error line. */
export async function attempt(work) {
    showError(null);
    try {
        return await work();
    }
    catch (e) {
        showError(errorText(e));
        return undefined;
    }
}
/** A new element with text content (never HTML: peer names and messages come from the network). */
export function textEl(tag, text, className) {
    const e = document.createElement(tag);
    e.textContent = text;
    if (className)
        e.className = className;
    return e;
}
