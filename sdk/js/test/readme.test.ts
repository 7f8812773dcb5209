/** The main README's TypeScript session is examples/session.ts, which `npm test` type-checks. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

test("the README's TypeScript session is examples/session.ts, word for word", () => {
  const readme = readFileSync(new URL("../../../../README.md", import.meta.url), "utf8");
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "README.md has a ```ts block");
  const example = readFileSync(new URL("../../examples/session.ts", import.meta.url), "utf8");
  assert.equal(example.split("\n").slice(1).join("\n"), block);
});
