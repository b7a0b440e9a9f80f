// The part of Tauri's global API (`app.withGlobalTauri`) the UI uses.
interface TauriChannel<T> {
  onmessage: (message: T) => void;
}
interface TauriCore {
  invoke<T>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  Channel: new <T>() => TauriChannel<T>;
}
interface Window {
  __TAURI__: { core: TauriCore };
}
