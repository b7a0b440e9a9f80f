// Typed wrappers over the app's IPC commands (src-tauri/src/command_list.rs).
// The core answers with display data only; passwords go in, never come back.

export type WalletState = "none" | "locked" | "unlocked";

export interface AccountView {
  address: string;
  label: string;
  watchOnly: boolean;
  isDefault: boolean;
}

export interface WalletStatus {
  state: WalletState;
  accounts: AccountView[];
  defaultAddress: string | null;
  keystore: string;
  backupSuggestion: string;
}

export interface BackupResult {
  path: string;
  accounts: number;
}

/** A QR code: `size` × `size` modules, row-major, "1" dark and "0" light, without quiet zone. */
export interface QrModules {
  size: number;
  modules: string;
}

/** What `wallet_receive` answers: the address, its `neo:` URI and the URI as a QR code. */
export interface ReceiveView {
  address: string;
  uri: string;
  qr: QrModules;
}

function invoke<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  return window.__TAURI__.core.invoke<T>(cmd, args);
}

export const wallet = {
  status: () => invoke<WalletStatus>("wallet_status"),
  create: (password: string) => invoke<WalletStatus>("wallet_create", { password }),
  unlock: (password: string) => invoke<WalletStatus>("wallet_unlock", { password }),
  lock: () => invoke<WalletStatus>("wallet_lock"),
  backup: (path: string) => invoke<BackupResult>("wallet_backup", { path }),
  importNep6: (path: string, password: string) =>
    invoke<WalletStatus>("wallet_import_nep6", { path, password }),
  /** The text of a NEP-6 file read by the file chooser (NEP-2 encrypted keys only). */
  importNep6Json: (json: string, name: string, password: string) =>
    invoke<WalletStatus>("wallet_import_nep6_json", { json, name, password }),
  /** A WIF private key typed by the user, on its way to the core (never sent back). */
  importWif: (wif: string, password: string) => invoke<WalletStatus>("wallet_import_wif", { wif, password }),
  /** A new key encrypted with the wallet's password (which goes in, never out). */
  addAccount: (password: string, label: string) => invoke<WalletStatus>("wallet_add_account", { password, label }),
  setDefault: (address: string) => invoke<WalletStatus>("wallet_set_default", { address }),
  receive: (address: string, amount: string | null) =>
    invoke<ReceiveView>("wallet_receive", { address, amount }),
};

// ---- chain ----

export interface ChainStatus {
  network: string;
  rpc: string;
  height: number;
  contract: string | null;
}

export interface Balances {
  address: string;
  gas: string;
  neo: string;
  height: number;
}

export interface HistoryItem {
  block: number;
  kind: string;
  summary: string;
  tx: string;
  gas: string | null;
}

export interface ProviderView {
  address: string;
  location: string;
}

export interface RegistrationView {
  address: string;
  provider: string;
  location: string;
}

/** A step of a transaction on its way into a block (src-tauri/src/commands/chain.rs TxStep). */
export type TxStep =
  | { step: "preparing"; text: string }
  | { step: "signed"; txid: string; fees: string }
  | { step: "submitted"; txid: string; validUntilBlock: number }
  | { step: "confirmed"; txid: string; block: number };

export interface TxResult {
  txid: string;
  block: number;
  fees: string;
}

function channel<T>(onmessage: (m: T) => void): TauriChannel<T> {
  const c = new window.__TAURI__.core.Channel<T>();
  c.onmessage = onmessage;
  return c;
}

/** A transfer signed and waiting for confirmation, with what it costs. */
export interface SendPreview {
  id: number;
  from: string;
  to: string;
  amount: string;
  fees: string;
  total: string;
}

export const chain = {
  status: () => invoke<ChainStatus>("chain_status"),
  balances: () => invoke<Balances>("chain_balances"),
  history: () => invoke<HistoryItem[]>("chain_history"),
  providers: () => invoke<ProviderView[]>("chain_providers"),
  registration: () => invoke<RegistrationView | null>("chain_registration"),
  register: (provider: string, onStep: (s: TxStep) => void) =>
    invoke<TxResult>("chain_register", { provider, progress: channel(onStep) }),
  unregister: (onStep: (s: TxStep) => void) =>
    invoke<TxResult>("chain_unregister", { progress: channel(onStep) }),
  sendPrepare: (to: string, amount: string) => invoke<SendPreview>("chain_send_prepare", { to, amount }),
  sendConfirm: (id: number, onStep: (s: TxStep) => void) =>
    invoke<TxResult>("chain_send_confirm", { id, progress: channel(onStep) }),
  sendCancel: () => invoke<void>("chain_send_cancel"),
};

// ---- phone ----

/** What `phone_start` set up. */
export interface PhoneStarted {
  aor: string;
  provider: string;
}

/** A command for the phone (krypton-core PhoneCommand, `{"cmd": …}`). */
export type PhoneCommand =
  | { cmd: "call"; to: string }
  | { cmd: "answer"; call: number }
  | { cmd: "hangup"; call: number }
  | { cmd: "hold"; call: number }
  | { cmd: "resume"; call: number }
  | { cmd: "mute"; call: number; on: boolean }
  | { cmd: "dtmf"; call: number; digits: string }
  | { cmd: "message"; to: string; body: string }
  | { cmd: "set_device"; input?: string; output?: string };

/** An event from the phone (krypton-core PhoneEvent, `{"event": …}`); the view uses these. */
export type PhoneEvent = { event: string; [field: string]: unknown };

export const phone = {
  start: (onEvent: (e: PhoneEvent) => void) =>
    invoke<PhoneStarted>("phone_start", { events: channel(onEvent) }),
  send: (command: PhoneCommand) => invoke<void>("phone_send", { command }),
  stop: () => invoke<void>("phone_stop"),
};

// ---- settings ----

/** What a routing rule matches (krypton-core `Match`). */
export type MatchSpec = { prefix: string } | { pattern: string } | "neo_address" | "sip_uri" | "any";

/** A routing rule (krypton-core `Rule`). */
export interface Rule {
  match: MatchSpec;
  accounts: string[];
  strip?: number;
  prepend?: string;
  fallback_to_default?: boolean;
}

/** Routing by destination (krypton-core `DialPlan`). */
export interface DialPlan {
  rules: Rule[];
  default: string[];
}

export interface SipAccountView {
  id: string;
  aor: string;
  proxy: string | null;
  username: string | null;
  displayName: string | null;
  register: boolean;
  hasPassword: boolean;
}

/** A SIP account from the form; `password` only when a new one was typed. */
export interface SipAccountInput {
  id: string;
  aor: string;
  proxy: string | null;
  username: string | null;
  displayName: string | null;
  register: boolean;
  password: string | null;
  clearPassword: boolean;
}

export interface SettingsView {
  network: string;
  contract: string | null;
  networkFixed: boolean;
  autoLockMinutes: number;
  audioInput: string;
  audioOutput: string;
  sipAccounts: SipAccountView[];
  dialPlan: DialPlan;
  routeAccounts: string[];
  problem: string | null;
}

export interface SettingsInput {
  network: string;
  contract: string | null;
  autoLockMinutes: number;
  audioInput: string;
  audioOutput: string;
  sipAccounts: SipAccountInput[];
  dialPlan: DialPlan;
}

export interface AudioDevice {
  id: string;
  name: string;
  isDefault: boolean;
}

export interface AudioDevices {
  host: string;
  inputs: AudioDevice[];
  outputs: AudioDevice[];
}

export const settings = {
  get: () => invoke<SettingsView>("settings_get"),
  save: (s: SettingsInput) => invoke<SettingsView>("settings_save", { settings: s }),
  audioDevices: () => invoke<AudioDevices>("audio_devices"),
};

// ---- call history and contacts ----

/** A call in the core's call log (krypton-core `CallRecord`); times in ms since the epoch. */
export interface CallRecord {
  id: number;
  account: string;
  direction: "in" | "out";
  remote: string;
  started_ms: number;
  answered_ms: number | null;
  ended_ms: number;
  end_reason: string;
  codec: string | null;
  mos: number | null;
}

/** A contact (krypton-core `Contact`); the destination as the core normalised it. */
export interface Contact {
  id: number;
  name: string;
  destination: string;
}

/** A contact from the form: `id` null for a new one. */
export interface ContactInput {
  id: number | null;
  name: string;
  destination: string;
}

export const book = {
  history: (limit: number) => invoke<CallRecord[]>("calls_history", { limit }),
  contacts: () => invoke<Contact[]>("contacts_list"),
  save: (contact: ContactInput) => invoke<Contact>("contacts_save", { contact }),
  remove: (id: number) => invoke<void>("contacts_delete", { id }),
};
