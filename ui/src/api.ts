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
};
