// Checks that the committed gpt2-reference.json is what reference.mjs produces today.
// Run: node --test tests/tokenizer/

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import encoder from "gpt-3-encoder";
import { REFERENCE_PATH, referenceJson, buildReference } from "./reference.mjs";

test("committed reference matches gpt-3-encoder", () => {
  const committed = readFileSync(REFERENCE_PATH, "utf8");
  assert.equal(committed, referenceJson(), "run `node tests/tokenizer/reference.mjs` and commit the result");
});

test("reference ids decode back to the text", () => {
  for (const { text, ids } of buildReference().cases) {
    assert.equal(encoder.decode(ids), text, `round trip of ${JSON.stringify(text)}`);
  }
});

test("endoftext text is not the special id", () => {
  const ids = encoder.encode("<|endoftext|>");
  assert.ok(!ids.includes(50256), `ids ${ids}`);
  assert.equal(ids.length, 7);
});
