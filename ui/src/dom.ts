// DOM helpers shared by the screens: element lookup, the error line and the progress indicator.
import { errorText } from "./forms.js";

export function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing in index.html`);
  return e as T;
}

export const input = (id: string) => el<HTMLInputElement>(id);

export function showError(message: string | null): void {
  const box = el("error");
  box.textContent = message ?? "";
  box.hidden = message === null;
}

/** Runs a core call with the progress indicator on and the forms disabled. */
export async function busy<T>(text: string, work: () => Promise<T>): Promise<T | undefined> {
  showError(null);
  el("busy-text").textContent = text;
  el("busy").hidden = false;
  const buttons = [...document.querySelectorAll<HTMLButtonElement>("button")];
  const wasDisabled = buttons.map((b) => b.disabled);
  buttons.forEach((b) => (b.disabled = true));
  try {
    return await work();
  } catch (e) {
    showError(errorText(e));
    return undefined;
  } finally {
    el("busy").hidden = true;
    buttons.forEach((b, i) => (b.disabled = wasDisabled[i]));
  }
}

/** Runs a quick core call (a phone action) without freezing the screen; errors go to the error line. */
export async function attempt<T>(work: () => Promise<T>): Promise<T | undefined> {
  showError(null);
  try {
    return await work();
  } catch (e) {
    showError(errorText(e));
    return undefined;
  }
}

/** A new element with text content (never HTML: peer names and messages come from the network). */
export function textEl<K extends keyof HTMLElementTagNameMap>(tag: K, text: string, className?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.textContent = text;
  if (className) e.className = className;
  return e;
}
