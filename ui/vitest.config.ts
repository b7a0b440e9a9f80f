// Vitest for the UI's view logic (ui/src/forms.ts, view.ts): pure functions, so plain Node, no
// browser or DOM. `npm test` type-checks (test/tsconfig.json) and runs these;
// scripts/test-desktop runs them too and counts them.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    // a stray test.only must not quietly skip the rest in CI
    allowOnly: false,
    passWithNoTests: false,
  },
});
