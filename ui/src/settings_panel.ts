// The Settings panel: network, auto-lock, sound devices, ordinary SIP accounts and routing
// rules. The core checks and saves them (settings_save); a SIP password goes in once and only
// "saved" comes back.
import {
  settings,
  type AudioDevice,
  type SettingsView,
  type SipAccountInput,
  type SipAccountView,
} from "./api.js";
import { attempt, busy, el, input, showError, textEl } from "./dom.js";
import { dialPlanOf, networkChoice, networkOf, ruleToRow, type MatchKind, type RuleRow } from "./settings_view.js";

const MATCH_KINDS: [MatchKind, string][] = [
  ["prefix", "Number starts with"],
  ["pattern", "Number matches pattern"],
  ["neo_address", "NEO address"],
  ["sip_uri", "SIP address"],
  ["any", "Anything"],
];

let onSaved: (s: SettingsView) => void = () => {};
let wired = false;

function field(row: HTMLElement, name: string): HTMLInputElement {
  return row.querySelector<HTMLInputElement>(`[data-field="${name}"]`)!;
}

function labelled(labelText: string, name: string, value: string, type = "text"): HTMLLabelElement {
  const l = textEl("label", labelText + " ");
  const i = document.createElement("input");
  i.type = type;
  i.value = value;
  i.dataset.field = name;
  i.spellcheck = false;
  l.append(i);
  return l;
}

function removeButton(row: HTMLElement, what: string): HTMLButtonElement {
  const b = textEl("button", `Remove ${what}`);
  b.type = "button";
  b.addEventListener("click", () => row.remove());
  return b;
}

function accountRow(a: SipAccountView | null): HTMLElement {
  const row = document.createElement("div");
  row.className = "setting-row sip-account";
  row.dataset.hasPassword = String(a?.hasPassword ?? false);
  const pw = labelled("Password", "password", "", "password");
  field(pw, "password").placeholder = a?.hasPassword ? "saved (type to replace)" : "";
  const reg = labelled("Register", "register", "", "checkbox");
  field(reg, "register").checked = a?.register ?? true;
  const buttons = document.createElement("div");
  buttons.className = "row";
  buttons.append(removeButton(row, "account"));
  row.append(
    labelled("Name", "id", a?.id ?? ""),
    labelled("SIP address (sip:user@domain)", "aor", a?.aor ?? ""),
    labelled("Outbound proxy (optional)", "proxy", a?.proxy ?? ""),
    labelled("User name (optional)", "username", a?.username ?? ""),
    pw,
    reg,
    buttons,
  );
  return row;
}

function ruleRow(r: RuleRow): HTMLElement {
  const row = document.createElement("div");
  row.className = "setting-row rule";
  const kind = document.createElement("select");
  kind.dataset.field = "kind";
  for (const [k, text] of MATCH_KINDS) {
    const o = textEl("option", text);
    o.value = k;
    kind.append(o);
  }
  kind.value = r.kind;
  const value = labelled("Prefix or pattern", "value", r.value);
  const showValue = () => (value.hidden = kind.value !== "prefix" && kind.value !== "pattern");
  kind.addEventListener("change", showValue);
  showValue();
  const fb = labelled("Then try the default accounts", "fallback", "", "checkbox");
  field(fb, "fallback").checked = r.fallback;
  const buttons = document.createElement("div");
  buttons.className = "row";
  const up = textEl("button", "Move up");
  up.type = "button";
  up.addEventListener("click", () => row.previousElementSibling?.before(row));
  buttons.append(up, removeButton(row, "rule"));
  row.append(
    kind,
    value,
    labelled("Accounts, in order", "accounts", r.accounts),
    labelled("Remove leading digits", "strip", r.strip),
    labelled("Then prepend", "prepend", r.prepend),
    fb,
    buttons,
  );
  return row;
}

function readRule(row: HTMLElement): RuleRow {
  return {
    kind: row.querySelector<HTMLSelectElement>('[data-field="kind"]')!.value as MatchKind,
    value: field(row, "value").value,
    accounts: field(row, "accounts").value,
    strip: field(row, "strip").value,
    prepend: field(row, "prepend").value,
    fallback: field(row, "fallback").checked,
  };
}

function readAccount(row: HTMLElement): SipAccountInput {
  const text = (name: string) => field(row, name).value.trim() || null;
  const pw = field(row, "password");
  const password = pw.value || null;
  pw.value = "";
  return {
    id: field(row, "id").value.trim(),
    aor: field(row, "aor").value.trim(),
    proxy: text("proxy"),
    username: text("username"),
    displayName: null,
    register: field(row, "register").checked,
    password,
    clearPassword: false,
  };
}

/** Fills a device select: "System default", the devices, and the chosen one if it is gone. */
export function fillDevices(select: HTMLSelectElement, devices: AudioDevice[], chosen: string): void {
  const options = [textEl("option", "System default")];
  options[0].value = "default";
  for (const d of devices) {
    const o = textEl("option", d.isDefault ? `${d.name} (default)` : d.name);
    o.value = d.id;
    options.push(o);
  }
  if (chosen !== "default" && !devices.some((d) => d.id === chosen)) {
    const o = textEl("option", `${chosen} (not connected)`);
    o.value = chosen;
    options.push(o);
  }
  select.replaceChildren(...options);
  select.value = chosen;
}

function show(s: SettingsView): void {
  el("settings-problem").textContent = s.problem ?? "";
  el("settings-problem").hidden = !s.problem;
  const { choice, url } = networkChoice(s.network);
  const net = el<HTMLSelectElement>("set-network");
  net.value = choice;
  input("set-rpc").value = url;
  input("set-contract").value = s.contract ?? "";
  el("set-custom").hidden = choice !== "custom";
  net.disabled = s.networkFixed;
  el("set-network-fixed").hidden = !s.networkFixed;
  input("set-autolock").value = String(s.autoLockMinutes);
  el("set-accounts").replaceChildren(...s.sipAccounts.map(accountRow));
  el("set-rules").replaceChildren(...s.dialPlan.rules.map((r) => ruleRow(ruleToRow(r))));
  input("set-default").value = s.dialPlan.default.join(", ");
  el("set-route-accounts").textContent = s.routeAccounts.join(", ") || "none yet";
  el<HTMLSelectElement>("set-input").dataset.chosen = s.audioInput;
  el<HTMLSelectElement>("set-output").dataset.chosen = s.audioOutput;
  fillDevices(el<HTMLSelectElement>("set-input"), [], s.audioInput);
  fillDevices(el<HTMLSelectElement>("set-output"), [], s.audioOutput);
  void loadDevices(s);
}

async function loadDevices(s: SettingsView): Promise<void> {
  const note = el("set-audio-note");
  try {
    const d = await settings.audioDevices();
    fillDevices(el<HTMLSelectElement>("set-input"), d.inputs, s.audioInput);
    fillDevices(el<HTMLSelectElement>("set-output"), d.outputs, s.audioOutput);
    note.textContent = `${d.host}: ${d.inputs.length} microphone(s), ${d.outputs.length} speaker(s). Changes apply to the next call.`;
  } catch (e) {
    note.textContent = `${String(e)} — calls use the system default.`;
  }
}

/** Reads the settings from the core into the panel. */
export async function refreshSettings(): Promise<void> {
  const s = await attempt(() => settings.get());
  if (s) show(s);
}

async function save(): Promise<void> {
  const network = networkOf(
    el<HTMLSelectElement>("set-network").value,
    input("set-rpc").value,
    input("set-contract").value,
  );
  if (typeof network !== "string") return showError(network.problem);
  const minutes = Number(input("set-autolock").value);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440)
    return showError("Enter the auto-lock time in whole minutes, from 1 to 1440.");
  const rows = [...el("set-rules").querySelectorAll<HTMLElement>(".rule")].map(readRule);
  const dialPlan = dialPlanOf(rows, input("set-default").value);
  if (typeof dialPlan === "string") return showError(dialPlan);
  const sipAccounts = [...el("set-accounts").querySelectorAll<HTMLElement>(".sip-account")].map(readAccount);
  const contract = input("set-contract").value.trim();
  const saved = await busy("Saving the settings…", () =>
    settings.save({
      network,
      contract: network === "devnet" || network === "testnet" || network === "mainnet" ? null : contract,
      autoLockMinutes: minutes,
      audioInput: el<HTMLSelectElement>("set-input").value || "default",
      audioOutput: el<HTMLSelectElement>("set-output").value || "default",
      sipAccounts,
      dialPlan,
    }),
  );
  if (!saved) return;
  show(saved);
  el("settings-saved").textContent = "Saved.";
  el("settings-saved").hidden = false;
  onSaved(saved);
}

/** Wires the panel once; `saved` runs after each successful save (to restart the phone). */
export function wireSettings(saved: (s: SettingsView) => void): void {
  onSaved = saved;
  if (wired) return;
  wired = true;
  el("set-network").addEventListener("change", () => {
    el("set-custom").hidden = el<HTMLSelectElement>("set-network").value !== "custom";
  });
  el("set-add-account").addEventListener("click", () => el("set-accounts").append(accountRow(null)));
  el("set-add-rule").addEventListener("click", () =>
    el("set-rules").append(
      ruleRow({ kind: "prefix", value: "", accounts: "", strip: "", prepend: "", fallback: false }),
    ),
  );
  el("settings-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    el("settings-saved").hidden = true;
    void save();
  });
}
