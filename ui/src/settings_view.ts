// Pure helpers of the Settings panel: routing rules as form rows and back, account lists, the
// network choice. No DOM, no IPC (unit-tested in ui/test/settings_view.test.ts).
import type { DialPlan, MatchSpec, Rule } from "./api.js";

/** The kinds of destination a rule can match, as the form's select offers them. */
export type MatchKind = "prefix" | "pattern" | "neo_address" | "sip_uri" | "any";

/** One routing rule as the form edits it (all text). */
export interface RuleRow {
  kind: MatchKind;
  /** The prefix or pattern; unused by the other kinds. */
  value: string;
  /** Account ids, comma-separated, in failover order. */
  accounts: string;
  strip: string;
  prepend: string;
  fallback: boolean;
}

/** The form row of a rule. */
export function ruleToRow(r: Rule): RuleRow {
  const m = r.match;
  let kind: MatchKind = "any";
  let value = "";
  if (typeof m === "string") kind = m;
  else if ("prefix" in m) [kind, value] = ["prefix", m.prefix];
  else if ("pattern" in m) [kind, value] = ["pattern", m.pattern];
  return {
    kind,
    value,
    accounts: r.accounts.join(", "),
    strip: r.strip ? String(r.strip) : "",
    prepend: r.prepend ?? "",
    fallback: r.fallback_to_default ?? false,
  };
}

/** Splits "a, b ,c" into ids (empty parts dropped). */
export function parseAccounts(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The rule of a form row, or what to fix in it (the core checks the rest when saving). */
export function rowToRule(row: RuleRow, n: number): Rule | string {
  const accounts = parseAccounts(row.accounts);
  if (accounts.length === 0) return `Rule ${n}: enter the accounts to try, e.g. "office" or an address.`;
  let match: MatchSpec;
  if (row.kind === "prefix" || row.kind === "pattern") {
    const v = row.value.trim();
    if (row.kind === "pattern" && !v) return `Rule ${n}: enter the pattern, e.g. 0NXXXXXXXX.`;
    match = row.kind === "prefix" ? { prefix: v } : { pattern: v };
  } else {
    match = row.kind;
  }
  const strip = row.strip.trim() === "" ? 0 : Number(row.strip.trim());
  if (!Number.isInteger(strip) || strip < 0 || strip > 32)
    return `Rule ${n}: "remove digits" must be a whole number from 0 to 32.`;
  return { match, accounts, strip, prepend: row.prepend.trim(), fallback_to_default: row.fallback };
}

/** The dial plan of the form's rows and default list, or the first problem. */
export function dialPlanOf(rows: RuleRow[], defaults: string): DialPlan | string {
  const rules: Rule[] = [];
  for (const [i, row] of rows.entries()) {
    const r = rowToRule(row, i + 1);
    if (typeof r === "string") return r;
    rules.push(r);
  }
  return { rules, default: parseAccounts(defaults) };
}

/** The built-in networks the select offers; anything else is a custom RPC URL. */
export const NETWORKS = ["devnet", "testnet", "mainnet"] as const;

/** The select's value for a saved network, and the custom URL if it is one. */
export function networkChoice(network: string): { choice: string; url: string } {
  return (NETWORKS as readonly string[]).includes(network)
    ? { choice: network, url: "" }
    : { choice: "custom", url: network };
}

/** The network to save from the select and the URL field, or what to fix. */
export function networkOf(choice: string, url: string, contract: string): string | { problem: string } {
  if (choice !== "custom") return choice;
  const u = url.trim();
  if (!/^https?:\/\/\S+$/.test(u)) return { problem: "Enter the RPC URL, starting with http:// or https://." };
  if (!/^(0x)?[0-9a-fA-F]{40}$/.test(contract.trim()))
    return { problem: "A custom network needs the KRYPTON contract's hash: 0x and 40 hex digits." };
  return u;
}
