// View logic without the DOM or IPC (unit-testable): form checks before asking the core.

export const MIN_PASSWORD_CHARS = 8;

/** Why a new password cannot be used (the core checks again), or null. */
export function newPasswordProblem(password: string, confirm: string): string | null {
  if ([...password].length < MIN_PASSWORD_CHARS) {
    return `Use at least ${MIN_PASSWORD_CHARS} characters for the password.`;
  }
  if (password !== confirm) {
    return "The two passwords differ: type the same password twice.";
  }
  return null;
}

/** Why a path typed by the user is not usable, or null. */
export function pathProblem(path: string, what: string): string | null {
  const p = path.trim();
  if (p === "") return `Enter the path of the ${what}.`;
  if (!p.startsWith("/")) return `Enter the ${what}'s full path, starting with /.`;
  return null;
}

/** An error from the core (a string) or anything else, as a sentence for the user. */
export function errorText(e: unknown): string {
  const s = typeof e === "string" ? e : e instanceof Error ? e.message : String(e);
  return s.charAt(0).toUpperCase() + s.slice(1);
}
