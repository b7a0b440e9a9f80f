// The part of Tauri's global API (`app.withGlobalTauri`) the UI uses.
interface TauriCore {
  invoke<T>(cmd: string, args?: Record<string, unknown>): Promise<T>;
}
interface Window {
  __TAURI__: { core: TauriCore };
}
