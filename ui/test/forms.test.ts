// The first-run forms' checks (ui/src/forms.ts): they must agree with the core's own checks
// (src-tauri/src/commands/wallet.rs) and say what to do.
import { describe, expect, it } from "vitest";
import {
  MAX_PASSWORD_BYTES,
  MIN_PASSWORD_CHARS,
  errorText,
  isFullPath,
  newPasswordProblem,
  pathProblem,
} from "../src/forms.js";

describe("newPasswordProblem", () => {
  it("accepts a long enough password typed twice", () => {
    expect(newPasswordProblem("correct horse", "correct horse")).toBeNull();
    expect(newPasswordProblem("12345678", "12345678")).toBeNull();
  });

  it("refuses fewer than 8 characters, before comparing", () => {
    expect(MIN_PASSWORD_CHARS).toBe(8);
    expect(newPasswordProblem("1234567", "1234567")).toMatch(/at least 8 characters/);
    expect(newPasswordProblem("", "")).toMatch(/at least 8/);
    expect(newPasswordProblem("short", "other")).toMatch(/at least 8/);
  });

  it("counts characters as the core does (code points, not UTF-16 units)", () => {
    // 7 emoji are 14 UTF-16 code units but 7 characters for the core's chars().count()
    const seven = "🔑".repeat(7);
    expect(seven.length).toBe(14);
    expect(newPasswordProblem(seven, seven)).toMatch(/at least 8/);
    const eight = "🔑".repeat(8);
    expect(newPasswordProblem(eight, eight)).toBeNull();
    expect(newPasswordProblem("pässwörd", "pässwörd")).toBeNull();
  });

  it("refuses more than 1024 bytes of UTF-8, as the core does", () => {
    const max = "a".repeat(MAX_PASSWORD_BYTES);
    expect(newPasswordProblem(max, max)).toBeNull();
    const over = "é".repeat(513); // 513 characters, 1026 bytes
    expect(newPasswordProblem(over, over)).toMatch(/at most 1024 bytes/);
  });

  it("refuses two different passwords and says to type the same twice", () => {
    const p = newPasswordProblem("e2e first-run password", "e2e first-run passwordx");
    expect(p).toBe("The two passwords differ: type the same password twice.");
    // no trimming or case folding: a password is what was typed
    expect(newPasswordProblem("password ", "password")).toMatch(/differ/);
    expect(newPasswordProblem("Password", "password")).toMatch(/differ/);
  });
});

describe("pathProblem", () => {
  it("accepts full paths, trimmed", () => {
    expect(pathProblem("/home/you/wallet.json", "NEP-6 file")).toBeNull();
    expect(pathProblem("  /tmp/backup.json \n", "backup file")).toBeNull();
  });

  it("accepts Windows full paths (the app is built for Windows too)", () => {
    expect(isFullPath("C:\\Users\\you\\wallet.json")).toBe(true);
    expect(isFullPath("d:/backup.json")).toBe(true);
    expect(isFullPath("\\\\server\\share\\wallet.json")).toBe(true);
    expect(pathProblem("C:\\Users\\you\\wallet.json", "NEP-6 file")).toBeNull();
  });

  it("asks for a path when there is none", () => {
    expect(pathProblem("", "backup file")).toBe("Enter the path of the backup file.");
    expect(pathProblem("   ", "NEP-6 file")).toBe("Enter the path of the NEP-6 file.");
  });

  it("refuses relative paths and says what a full path starts with", () => {
    for (const p of ["wallet.json", "./wallet.json", "../x/wallet.json", "C:wallet.json", "\\\\server"]) {
      expect(isFullPath(p), p).toBe(false);
      const problem = pathProblem(p, "NEP-6 file");
      expect(problem, p).toMatch(/^Enter the NEP-6 file's full path, starting with \//);
    }
  });

  it("explains that ~ is not expanded", () => {
    expect(pathProblem("~/wallet.json", "NEP-6 file")).toMatch(/~ is not expanded/);
    expect(pathProblem("~", "backup file")).toMatch(/^Enter the backup file's full path: ~/);
  });
});

describe("errorText", () => {
  it("capitalises the core's error string and keeps the rest", () => {
    expect(
      errorText("wrong password for account NXV7ZhHiyM1aHXwpVsRZC6BwNFP2jghXAq; check the password and try again"),
    ).toBe("Wrong password for account NXV7ZhHiyM1aHXwpVsRZC6BwNFP2jghXAq; check the password and try again");
    expect(errorText("/tmp/x.json exists already")).toBe("/tmp/x.json exists already");
  });

  it("takes the message of an Error or of an error-like object", () => {
    expect(errorText(new Error("cannot read /x: no such file"))).toBe("Cannot read /x: no such file");
    expect(errorText(new TypeError("failed to fetch"))).toBe("Failed to fetch");
    expect(errorText({ message: "command wallet_x not found" })).toBe("Command wallet_x not found");
  });

  it("never shows an empty box, 'undefined' or '[object Object]'", () => {
    for (const e of [undefined, null, "", "   ", new Error(""), {}]) {
      const t = errorText(e);
      expect(t, String(e)).toMatch(/^Something went wrong/);
    }
    expect(errorText(42)).toBe("42");
  });

  it("trims, and leaves non-letters and non-ASCII starts alone", () => {
    expect(errorText("  the folder does not exist \n")).toBe("The folder does not exist");
    expect(errorText("élan")).toBe("Élan");
    expect(errorText("404: not found")).toBe("404: not found");
  });
});
