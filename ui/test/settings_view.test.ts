// Settings panel logic (ui/src/settings_view.ts): routing rules as form rows and back, the
// network choice.
import { describe, expect, it } from "vitest";
import type { Rule } from "../src/api.js";
import { dialPlanOf, networkChoice, networkOf, parseAccounts, ruleToRow, rowToRule } from "../src/settings_view.js";

describe("routing rules in the form", () => {
  it("round-trips each kind of rule through a form row", () => {
    const rules: Rule[] = [
      { match: { prefix: "+31" }, accounts: ["office", "NX"], strip: 3, prepend: "0", fallback_to_default: true },
      { match: { pattern: "0NXXXXXXXX" }, accounts: ["home"], strip: 0, prepend: "", fallback_to_default: false },
      { match: "neo_address", accounts: ["NX"], strip: 0, prepend: "", fallback_to_default: false },
      { match: "sip_uri", accounts: ["office"], strip: 0, prepend: "", fallback_to_default: false },
      { match: "any", accounts: ["home"], strip: 0, prepend: "", fallback_to_default: false },
    ];
    rules.forEach((r, i) => expect(rowToRule(ruleToRow(r), i + 1)).toEqual(r));
  });

  it("shows a rule as text fields", () => {
    expect(ruleToRow({ match: { prefix: "00" }, accounts: ["a", "b"], strip: 2 })).toEqual({
      kind: "prefix",
      value: "00",
      accounts: "a, b",
      strip: "2",
      prepend: "",
      fallback: false,
    });
  });

  it("says what to fix in a row", () => {
    const row = { kind: "prefix" as const, value: "0", accounts: "", strip: "", prepend: "", fallback: false };
    expect(rowToRule(row, 2)).toMatch(/^Rule 2: enter the accounts/);
    expect(rowToRule({ ...row, accounts: "a", strip: "-1" }, 1)).toMatch(/whole number/);
    expect(rowToRule({ ...row, accounts: "a", strip: "1.5" }, 1)).toMatch(/whole number/);
    expect(rowToRule({ ...row, kind: "pattern", value: " ", accounts: "a" }, 3)).toMatch(/^Rule 3: enter the pattern/);
    expect(dialPlanOf([{ ...row, accounts: "a" }, row], "")).toMatch(/^Rule 2/);
  });

  it("splits account lists on commas and spaces", () => {
    expect(parseAccounts(" office, NX1  home,,")).toEqual(["office", "NX1", "home"]);
    expect(parseAccounts("")).toEqual([]);
    expect(dialPlanOf([], "a, b")).toEqual({ rules: [], default: ["a", "b"] });
  });
});

describe("network choice", () => {
  it("maps saved networks to the select", () => {
    expect(networkChoice("testnet")).toEqual({ choice: "testnet", url: "" });
    expect(networkChoice("http://127.0.0.1:20332")).toEqual({ choice: "custom", url: "http://127.0.0.1:20332" });
  });

  it("needs a URL and a contract for a custom RPC", () => {
    const hash = "0x" + "ab".repeat(20);
    expect(networkOf("mainnet", "", "")).toBe("mainnet");
    expect(networkOf("custom", "https://rpc.example:10332", hash)).toBe("https://rpc.example:10332");
    expect(networkOf("custom", "rpc.example", hash)).toEqual({ problem: expect.stringMatching(/http/) });
    expect(networkOf("custom", "https://rpc.example", "0x12")).toEqual({
      problem: expect.stringMatching(/contract/),
    });
  });
});
