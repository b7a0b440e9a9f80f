// The Receive block's QR drawing (ui/src/receive.ts): the core's module string → rectangles.
import { describe, expect, it } from "vitest";
import { QUIET_ZONE, moduleScale, qrProblem, qrRects } from "../src/receive.js";

/** A 21 × 21 grid, light except the given dark [x, y] modules. */
function grid(dark: [number, number][]): { size: number; modules: string } {
  const m = Array.from({ length: 21 * 21 }, () => "0");
  for (const [x, y] of dark) m[y * 21 + x] = "1";
  return { size: 21, modules: m.join("") };
}

/** Paints the rects back into a grid (quiet zone removed), to compare with the input. */
function paint(size: number, rects: { x: number; y: number; w: number; h: number }[]): string {
  const m = Array.from({ length: size * size }, () => "0");
  for (const r of rects) {
    for (let y = r.y; y < r.y + r.h; y++) {
      for (let x = r.x; x < r.x + r.w; x++) {
        const gx = x - QUIET_ZONE;
        const gy = y - QUIET_ZONE;
        expect(gx >= 0 && gy >= 0 && gx < size && gy < size).toBe(true);
        expect(m[gy * size + gx]).toBe("0"); // no module painted twice
        m[gy * size + gx] = "1";
      }
    }
  }
  return m.join("");
}

describe("qrRects", () => {
  it("merges a row's dark runs and shifts them by the quiet zone", () => {
    const q = grid([
      [0, 0],
      [1, 0],
      [2, 0],
      [5, 0],
      [20, 20],
    ]);
    expect(qrRects(q)).toEqual([
      { x: 4, y: 4, w: 3, h: 1 },
      { x: 9, y: 4, w: 1, h: 1 },
      { x: 24, y: 24, w: 1, h: 1 },
    ]);
    expect(qrRects(q, 0)[0]).toEqual({ x: 0, y: 0, w: 3, h: 1 });
  });

  it("draws exactly the dark modules, runs that end at a row's edge included", () => {
    // a pseudo-random 25 × 25 grid (version 2)
    let seed = 7;
    const modules = Array.from({ length: 25 * 25 }, () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % 3 === 0 ? "1" : "0";
    }).join("");
    const full = "1".repeat(25 * 25);
    expect(paint(25, qrRects({ size: 25, modules }))).toBe(modules);
    expect(qrRects({ size: 25, modules: full })).toHaveLength(25);
    expect(qrRects({ size: 25, modules: "0".repeat(625) })).toEqual([]);
  });

  it("refuses what is not a QR code's grid", () => {
    expect(qrProblem(grid([]))).toBeNull();
    expect(qrProblem({ size: 20, modules: "0".repeat(400) })).toMatch(/21 to 177/);
    expect(qrProblem({ size: 181, modules: "0".repeat(181 * 181) })).toMatch(/21 to 177/);
    expect(qrProblem({ size: 21, modules: "0".repeat(440) })).toMatch(/441 modules/);
    expect(qrProblem({ size: 21, modules: "2".repeat(441) })).toMatch(/0 \(light\) or 1 \(dark\)/);
    expect(qrProblem({ size: Number.NaN, modules: "" })).toMatch(/21 to 177/);
    expect(() => qrRects({ size: 21, modules: "<b>" })).toThrow(/441 modules/);
  });
});

describe("moduleScale", () => {
  it("fits the code and its quiet zone, never below one pixel a module", () => {
    expect(moduleScale(21, 240)).toBe(8); // 29 modules × 8 = 232
    expect(moduleScale(33, 240)).toBe(5); // 41 × 5 = 205
    expect(moduleScale(177, 100)).toBe(1);
  });
});
