// Display logic (ui/src/view.ts): amounts as exact integers, call timers, dialled destinations.
import { describe, expect, it } from "vitest";
import {
  GAS_DECIMALS,
  NEO_DECIMALS,
  destinationKind,
  formatDuration,
  formatUnits,
  looksLikeAddress,
  parseAmount,
} from "../src/view.js";

describe("formatUnits", () => {
  it("shows datoshi as GAS without trailing zeros", () => {
    expect(formatUnits("150000000")).toBe("1.5");
    expect(formatUnits("100000000")).toBe("1");
    expect(formatUnits("1")).toBe("0.00000001");
    expect(formatUnits("0")).toBe("0");
    expect(formatUnits("997123400")).toBe("9.971234");
    expect(formatUnits(-2500_0000n)).toBe("-0.25");
  });

  it("is exact beyond 2^53 (no floating point)", () => {
    // 52,000,000 GAS ≈ 5.2e15 datoshi, and one more datoshi
    expect(formatUnits("5200000000000001")).toBe("52000000.00000001");
    expect(formatUnits(2n ** 64n)).toBe("184467440737.09551616");
  });

  it("shows NEO (indivisible) as it is", () => {
    expect(formatUnits("42", NEO_DECIMALS)).toBe("42");
  });

  it("refuses what is not an integer", () => {
    for (const bad of ["1.5", "", "1e8", "0x10", " 1"]) {
      expect(() => formatUnits(bad), bad).toThrow(/not an integer amount/);
    }
  });
});

describe("parseAmount", () => {
  it("reads what people type into datoshi", () => {
    expect(GAS_DECIMALS).toBe(8);
    expect(parseAmount("1.5").units).toBe(1_5000_0000n);
    expect(parseAmount(" 2 ").units).toBe(2_0000_0000n);
    expect(parseAmount("0,25").units).toBe(2500_0000n);
    expect(parseAmount(".5").units).toBe(5000_0000n);
    expect(parseAmount("5.").units).toBe(5_0000_0000n);
    expect(parseAmount("0.00000001").units).toBe(1n);
    expect(parseAmount("52000000.00000001").units).toBe(5200000000000001n);
  });

  it("round-trips with formatUnits", () => {
    for (const t of ["1.5", "0.00000001", "123456789.87654321", "7"]) {
      const { units } = parseAmount(t);
      expect(units).not.toBeNull();
      expect(formatUnits(units!)).toBe(t);
    }
  });

  it("says what is wrong", () => {
    expect(parseAmount("").problem).toBe("Enter an amount.");
    expect(parseAmount("0").problem).toMatch(/greater than 0/);
    expect(parseAmount("0.000000000").problem).toMatch(/at most 8 digits/);
    expect(parseAmount("0.000000001").problem).toMatch(/at most 8 digits/);
    for (const bad of ["-1", "1e3", "abc", "1.2.3", ".", "1 000", "+1"]) {
      expect(parseAmount(bad).problem, bad).toMatch(/as a number/);
      expect(parseAmount(bad).units, bad).toBeNull();
    }
  });

  it("keeps NEO whole", () => {
    expect(parseAmount("3", NEO_DECIMALS).units).toBe(3n);
    expect(parseAmount("1.5", NEO_DECIMALS).problem).toMatch(/whole number/);
  });
});

describe("formatDuration", () => {
  it("counts like a call timer", () => {
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(7)).toBe("0:07");
    expect(formatDuration(59.9)).toBe("0:59");
    expect(formatDuration(60)).toBe("1:00");
    expect(formatDuration(754)).toBe("12:34");
    expect(formatDuration(3600)).toBe("1:00:00");
    expect(formatDuration(3723)).toBe("1:02:03");
  });

  it("shows 0:00 for nonsense", () => {
    for (const n of [-5, NaN, Infinity]) expect(formatDuration(n)).toBe("0:00");
  });
});

describe("destinationKind", () => {
  const address = "NXV7ZhHiyM1aHXwpVsRZC6BwNFP2jghXAq";

  it("recognises N3 addresses by shape", () => {
    expect(looksLikeAddress(address)).toBe(true);
    expect(destinationKind(` ${address} `)).toBe("address");
    // base58 has no 0, O, I, l; an address is 34 characters and starts with N
    for (const bad of [address.slice(0, 33), address + "a", "A" + address.slice(1), address.slice(0, 33) + "0"]) {
      expect(looksLikeAddress(bad), bad).toBe(false);
      expect(destinationKind(bad), bad).not.toBe("address");
    }
  });

  it("tells numbers, SIP URIs and names apart", () => {
    expect(destinationKind("+31201234567")).toBe("number");
    expect(destinationKind("+31 (20) 123-4567")).toBe("number");
    expect(destinationKind("112")).toBe("number");
    expect(destinationKind("sip:bob@example.org")).toBe("sip");
    expect(destinationKind("SIPS:alice@127.0.0.1:5061")).toBe("sip");
    expect(destinationKind("bob")).toBe("name");
    expect(destinationKind("provider-a.alice")).toBe("name");
  });

  it("refuses what cannot be dialled", () => {
    for (const bad of ["", "   ", "+", "*#", "bob smith", "sip:", "<script>"]) {
      expect(destinationKind(bad), bad).toBeNull();
    }
  });
});
