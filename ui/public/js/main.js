// The first-run flow: create (or import: NEP-6 file, WIF key) a wallet, export a backup, then the
// main screen.
// No secrets are kept here: a password is read from its field, sent to the core, and the
// field is cleared.
import { wallet } from "./api.js";
import { busy, el, input, showError } from "./dom.js";
import { newPasswordProblem, pathProblem } from "./forms.js";
import { openMain } from "./main_screen.js";
const SCREENS = ["loading", "first-run", "backup", "unlock", "main"];
function show(screen) {
    for (const s of SCREENS)
        el(`${s}-screen`).hidden = s !== screen;
}
function showMain(s) {
    show("main");
    openMain(s);
}
function route(s) {
    if (s.state === "none") {
        input("backup-path").value = s.backupSuggestion;
        show("first-run");
    }
    else if (s.state === "locked") {
        show("unlock");
    }
    else {
        showMain(s);
    }
}
const TABS = [
    { tab: "create", form: "create-form" },
    { tab: "import", form: "import-form" },
    { tab: "wif", form: "wif-form" },
];
function selectTab(tab) {
    for (const t of TABS) {
        el(t.form).hidden = t.tab !== tab;
        el(`tab-${t.tab}`).setAttribute("aria-selected", String(t.tab === tab));
    }
    showError(null);
}
/** Largest NEP-6 file the core imports (src-tauri/src/commands/wallet.rs, MAX_IMPORT_BYTES). */
const MAX_IMPORT_BYTES = 4 * 1024 * 1024;
/** The backup step, after a new key (created, or imported as WIF) is in the wallet. */
function toBackup(s) {
    el("new-address").textContent = s.defaultAddress ?? "";
    input("backup-path").value = s.backupSuggestion;
    el("backup-result").hidden = true;
    el("backup-continue").disabled = true;
    show("backup");
}
function wire() {
    el("tab-create").addEventListener("click", () => selectTab("create"));
    el("tab-import").addEventListener("click", () => selectTab("import"));
    el("tab-wif").addEventListener("click", () => selectTab("wif"));
    el("create-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const pw = input("create-password");
        const confirm = input("create-confirm");
        const problem = newPasswordProblem(pw.value, confirm.value);
        if (problem)
            return showError(problem);
        const password = pw.value;
        pw.value = "";
        confirm.value = "";
        const s = await busy("Encrypting your new key (scrypt); this takes a few seconds…", () => wallet.create(password));
        if (s)
            toBackup(s);
    });
    el("wif-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const key = input("wif-key");
        const pw = input("wif-password");
        const confirm = input("wif-confirm");
        if (key.value.trim() === "")
            return showError("Paste the private key (WIF) to import.");
        const problem = newPasswordProblem(pw.value, confirm.value);
        if (problem)
            return showError(problem);
        const wif = key.value;
        const password = pw.value;
        key.value = "";
        pw.value = "";
        confirm.value = "";
        const s = await busy("Encrypting the key with your password (scrypt); this takes a few seconds…", () => wallet.importWif(wif, password));
        if (s)
            toBackup(s);
    });
    el("backup-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const path = input("backup-path").value.trim();
        const problem = pathProblem(path, "backup file");
        if (problem)
            return showError(problem);
        const r = await busy("Writing the backup…", () => wallet.backup(path));
        if (!r)
            return;
        const done = el("backup-result");
        done.textContent = `Backup written to ${r.path} (${r.accounts} account${r.accounts === 1 ? "" : "s"}, keys encrypted with your password). Keep it somewhere safe, away from this computer.`;
        done.hidden = false;
        el("backup-continue").disabled = false;
    });
    el("backup-continue").addEventListener("click", async () => {
        const s = await busy("Opening your wallet…", () => wallet.status());
        if (s)
            showMain(s);
    });
    // a chosen file or a typed path, whichever came last
    el("import-file").addEventListener("change", () => {
        if (input("import-file").files?.length)
            input("import-path").value = "";
    });
    el("import-path").addEventListener("input", () => {
        input("import-file").value = "";
    });
    el("import-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const file = input("import-file").files?.[0];
        const path = input("import-path").value.trim();
        if (!file) {
            const problem = pathProblem(path, "NEP-6 file");
            if (problem)
                return showError(`Choose the NEP-6 file, or ${problem.charAt(0).toLowerCase()}${problem.slice(1)}`);
        }
        else if (file.size > MAX_IMPORT_BYTES) {
            return showError(`${file.name} is larger than 4 MiB, so it is not a NEP-6 wallet: choose the wallet's .json file.`);
        }
        const pw = input("import-password");
        const password = pw.value;
        pw.value = "";
        const s = await busy("Checking the password against every key (scrypt)…", async () => file ? wallet.importNep6Json(await file.text(), file.name, password) : wallet.importNep6(path, password));
        if (s)
            showMain(s);
    });
    el("unlock-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const pw = input("unlock-password");
        const password = pw.value;
        pw.value = "";
        const s = await busy("Unlocking (scrypt)…", () => wallet.unlock(password));
        if (s)
            showMain(s);
    });
    el("lock").addEventListener("click", async () => {
        const s = await busy("Locking…", () => wallet.lock());
        if (s)
            route(s);
    });
    // The core's auto-lock dropped the keys (main_screen.ts notices): ask for the password.
    document.addEventListener("krypton:locked", (e) => route(e.detail));
}
async function start() {
    wire();
    selectTab("create");
    const s = await busy("Opening the keychain…", () => wallet.status());
    if (s)
        route(s);
}
document.addEventListener("DOMContentLoaded", () => void start());
