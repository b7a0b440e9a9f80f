// View logic without the DOM or IPC (unit-testable, ui/test/forms.test.ts): form checks before
// asking the core. The core checks everything again; these only save a round trip (and a scrypt
// run) and say what to do.
export const MIN_PASSWORD_CHARS = 8;
/** The core refuses longer passwords (src-tauri/src/commands/wallet.rs, check_new_password). */
export const MAX_PASSWORD_BYTES = 1024;
/** Why a new password cannot be used (the core checks again), or null. */
export function newPasswordProblem(password, confirm) {
    // characters as the core counts them (Unicode scalar values), not UTF-16 code units
    if ([...password].length < MIN_PASSWORD_CHARS) {
        return `Use at least ${MIN_PASSWORD_CHARS} characters for the password.`;
    }
    if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) {
        return `The password is too long: use at most ${MAX_PASSWORD_BYTES} bytes.`;
    }
    if (password !== confirm) {
        return "The two passwords differ: type the same password twice.";
    }
    return null;
}
/** An absolute path on Linux or macOS (/…), or on Windows (C:\… or \\server\share\…). */
export function isFullPath(path) {
    return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || /^\\\\[^\\]+\\[^\\]+/.test(path);
}
/** Why a path typed by the user is not usable, or null. */
export function pathProblem(path, what) {
    const p = path.trim();
    if (p === "")
        return `Enter the path of the ${what}.`;
    if (p === "~" || p.startsWith("~/") || p.startsWith("~\\")) {
        return `Enter the ${what}'s full path: ~ is not expanded here, write your home folder's full path instead.`;
    }
    if (!isFullPath(p))
        return `Enter the ${what}'s full path, starting with / (or with a drive such as C:\\ on Windows).`;
    return null;
}
/** An error from the core (a string) or anything else, as a sentence for the user. */
export function errorText(e) {
    let s;
    if (typeof e === "string")
        s = e;
    else if (e instanceof Error)
        s = e.message;
    else if (typeof e === "object" && e !== null && typeof e.message === "string") {
        s = e.message;
    }
    else if (e === null || e === undefined)
        s = "";
    else if (typeof e === "object")
        s = jsonOf(e);
    else
        s = String(e);
    s = s.trim();
    if (s === "")
        return "Something went wrong and the app gave no reason: try again.";
    return s.charAt(0).toUpperCase() + s.slice(1);
}
function jsonOf(o) {
    try {
        const j = JSON.stringify(o);
        return j === undefined || j === "{}" ? "" : j;
    }
    catch {
        return "";
    }
}
