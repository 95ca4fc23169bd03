// Writes gpt2-reference.json: GPT-2 token ids from the gpt-3-encoder npm package for a
// table of hard cases. The Rust tokenizer test checks banter's tokenizer.json against it.
//
// Usage (repository root, after `npm ci`): node tests/tokenizer/reference.mjs

import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import encoder from "gpt-3-encoder";

/** File the reference is written to, next to this script. */
export const REFERENCE_PATH = fileURLToPath(new URL("./gpt2-reference.json", import.meta.url));

/** Strings covering GPT-2's pre-tokenizer regex, byte-level fallback and whitespace runs. */
export const CASES = [
  "Hello world",
  "The quick brown fox jumps over the lazy dog.",
  'A man was asked "Hello". He smiled and said, "',
  "Wait... what?! (Really) [yes] {no} <maybe> #1 @home $5 100% a&b *star* ~tilde~",
  "café, naïve, über, Zürich, señor, mañana, résumé",
  "日本語のテキストと中文文本",
  "emoji: 😀 👍🏽 🇫🇷",
  "family: 👨‍👩‍👧‍👦 and 🏳️‍🌈",
  "two  spaces and three   spaces",
  "   leading spaces",
  "trailing spaces   ",
  " ",
  "line one\nline two\n\nline four",
  "windows\r\nline\r\n",
  "tab\tseparated\tvalues\t",
  "numbers 0 7 42 1234567890 3.14159 -12 1,000,000",
  "contractions: I'm you're he's we've they'll she'd don't can't it's",
  "SHOUTING and MixedCase and camelCaseWords",
  "<|endoftext|>",
  "before<|endoftext|>after",
  "",
];

/** Encodes every case with gpt-3-encoder. */
export function buildReference() {
  return {
    generator: "gpt-3-encoder 1.1.4 via tests/tokenizer/reference.mjs",
    cases: CASES.map((text) => ({ text, ids: encoder.encode(text) })),
  };
}

/** Serialises the reference exactly as it is committed: one case per line. */
export function referenceJson() {
  const { generator, cases } = buildReference();
  const lines = cases.map((entry) => "  " + JSON.stringify(entry));
  return `{\n "generator": ${JSON.stringify(generator)},\n "cases": [\n${lines.join(",\n")}\n ]\n}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(REFERENCE_PATH, referenceJson());
  console.log(`wrote ${REFERENCE_PATH}`);
}
