// The first-run flow: create (or import) a wallet, export a backup, then the main screen.
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
function selectTab(tab) {
    el("create-form").hidden = tab !== "create";
    el("import-form").hidden = tab !== "import";
    el("tab-create").setAttribute("aria-selected", String(tab === "create"));
    el("tab-import").setAttribute("aria-selected", String(tab === "import"));
    showError(null);
}
function wire() {
    el("tab-create").addEventListener("click", () => selectTab("create"));
    el("tab-import").addEventListener("click", () => selectTab("import"));
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
        if (!s)
            return;
        el("new-address").textContent = s.defaultAddress ?? "";
        input("backup-path").value = s.backupSuggestion;
        el("backup-result").hidden = true;
        el("backup-continue").disabled = true;
        show("backup");
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
    el("import-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const path = input("import-path").value.trim();
        const problem = pathProblem(path, "NEP-6 file");
        if (problem)
            return showError(problem);
        const pw = input("import-password");
        const password = pw.value;
        pw.value = "";
        const s = await busy("Checking the password against every key (scrypt)…", () => wallet.importNep6(path, password));
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
}
async function start() {
    wire();
    selectTab("create");
    const s = await busy("Opening the keychain…", () => wallet.status());
    if (s)
        route(s);
}
document.addEventListener("DOMContentLoaded", () => void start());
