// The History tab: the core's call log (newest first) and the contacts (add, edit, delete). Every
// entry has a Call button that dials through the Phone panel's dialer, so a call placed from here
// goes through the same checks and the same phone code as one typed there. The core keeps and
// checks the data; this module only shows it (the formatting helpers are pure, ui/test).
import { book, type CallRecord, type Contact } from "./api.js";
import { attempt, el, input, showError, textEl } from "./dom.js";
import { formatDuration } from "./view.js";

/** How many calls the History tab shows. */
export const HISTORY_LIMIT = 100;

const REASONS: Record<string, string> = {
  local_hangup: "you hung up",
  remote_hangup: "they hung up",
  busy: "busy",
  declined: "declined",
  timeout: "no answer",
  failed: "failed",
  media_failure: "no audio",
  transferred: "transferred",
};

/** How a call ended, in words ("they hung up"); unknown reasons as they are, underscores as spaces. */
export function endReasonText(reason: string): string {
  return REASONS[reason] ?? reason.replace(/_/g, " ");
}

/** Whether an incoming call was never answered (a missed call). */
export function isMissed(c: CallRecord): boolean {
  return c.direction === "in" && c.answered_ms === null;
}

/** How long the call talked ("0:42"), or why it did not ("not answered", "missed"). */
export function callDurationText(c: CallRecord): string {
  if (c.answered_ms === null) return isMissed(c) ? "missed" : "not answered";
  return formatDuration(Math.max(0, c.ended_ms - c.answered_ms) / 1000);
}

const pad = (n: number) => String(n).padStart(2, "0");

/** When a call started, in local time: "14:05" today, "2024-03-05 14:05" on another day. */
export function whenText(ms: number, now: number): string {
  const d = new Date(ms);
  const n = new Date(now);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const sameDay = d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate();
  return sameDay ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** The user part of a `sip:`/`sips:` URI (`sip:N…@host` → `N…`), else the text as it is. */
export function remoteUser(remote: string): string {
  const m = /^<?sips?:([^@;>]+)/i.exec(remote.trim());
  return m ? m[1] : remote.trim();
}

/** The contact a call's remote party is saved as (by destination or the URI's user), if any. */
export function contactFor(contacts: Contact[], remote: string): Contact | undefined {
  const user = remoteUser(remote);
  return contacts.find((c) => c.destination === remote || c.destination === user);
}

/** What the Call button dials for a call-log entry: the contact's destination, else the remote. */
export function callBackTarget(contacts: Contact[], c: CallRecord): string {
  return contactFor(contacts, c.remote)?.destination ?? c.remote;
}

let contacts: Contact[] = [];
let wiredBook = false;

/** Fills the dialer with `destination`, shows the Phone panel and places the call there. */
function dial(destination: string): void {
  input("dial-to").value = destination;
  el("nav-phone").click();
  const form = el<HTMLFormElement>("dial-form");
  if (typeof form.requestSubmit === "function") form.requestSubmit();
  else form.dispatchEvent(new Event("submit", { cancelable: true }));
}

function button(text: string, className: string, onClick: () => void): HTMLButtonElement {
  const b = textEl("button", text, className);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function renderHistory(calls: CallRecord[]): void {
  const now = Date.now();
  el("calls-empty").hidden = calls.length > 0;
  el("calls-list").replaceChildren(
    ...calls.map((c) => {
      const li = document.createElement("li");
      li.dataset.id = String(c.id);
      li.dataset.remote = c.remote;
      li.dataset.direction = c.direction;
      li.dataset.reason = c.end_reason;
      if (isMissed(c)) li.classList.add("missed");
      const who = document.createElement("span");
      who.className = "who";
      const name = contactFor(contacts, c.remote)?.name;
      who.append(textEl("span", c.direction === "in" ? "← " : "→ ", "dir"));
      if (name) who.append(textEl("strong", name), " ");
      who.append(textEl("code", c.remote));
      const mos = c.mos !== null && c.answered_ms !== null ? ` · MOS ${c.mos.toFixed(1)}` : "";
      li.append(
        who,
        textEl("span", callDurationText(c), "duration"),
        textEl("span", ` · ${whenText(c.started_ms, now)} · ${endReasonText(c.end_reason)}${mos}`, "muted"),
        button("Call", "call-back", () => dial(callBackTarget(contacts, c))),
      );
      return li;
    }),
  );
}

function renderContacts(): void {
  el("contacts-empty").hidden = contacts.length > 0;
  el("contacts-list").replaceChildren(
    ...contacts.map((c) => {
      const li = document.createElement("li");
      li.dataset.id = String(c.id);
      li.dataset.destination = c.destination;
      const who = document.createElement("span");
      who.className = "who";
      who.append(textEl("strong", c.name, "name"), " ", textEl("code", c.destination));
      li.append(
        who,
        button("Call", "contact-call", () => dial(c.destination)),
        button("Edit", "contact-edit", () => editContact(c)),
        button("Delete", "contact-delete danger", () => void deleteContact(c)),
      );
      return li;
    }),
  );
}

function editContact(c: Contact | null): void {
  input("contact-id").value = c ? String(c.id) : "";
  input("contact-name").value = c?.name ?? "";
  input("contact-destination").value = c?.destination ?? "";
  el("contact-save").textContent = c ? "Save changes" : "Add contact";
  el("contact-cancel").hidden = c === null;
  if (c) input("contact-name").focus();
}

async function deleteContact(c: Contact): Promise<void> {
  if ((await attempt(() => book.remove(c.id))) === undefined) return;
  if (input("contact-id").value === String(c.id)) editContact(null);
  await refreshBook();
}

/** Reloads the call log and the contacts from the core and shows them. */
export async function refreshBook(): Promise<void> {
  try {
    const [list, calls] = await Promise.all([book.contacts(), book.history(HISTORY_LIMIT)]);
    contacts = list;
    renderContacts();
    renderHistory(calls);
  } catch (e) {
    showError(`The call history cannot be read: ${String(e)}`);
  }
}

/** Wires the History tab's contact form (once). */
export function wireBook(): void {
  if (wiredBook) return;
  wiredBook = true;
  el("contact-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = input("contact-id").value;
    const name = input("contact-name").value;
    const destination = input("contact-destination").value;
    if (!name.trim() || !destination.trim()) {
      return showError("Enter the contact's name and a NEO address, number or SIP address.");
    }
    const saved = await attempt(() => book.save({ id: id ? Number(id) : null, name, destination }));
    if (!saved) return;
    editContact(null);
    await refreshBook();
  });
  el("contact-cancel").addEventListener("click", () => editContact(null));
  el("calls-refresh").addEventListener("click", () => void refreshBook());
}
