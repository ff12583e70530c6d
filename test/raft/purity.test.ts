/**
 * @module The Raft core must stay pure (house style §1, §2): no runtime, framework or node:* imports,
 * no clock, no ambient randomness, no timers. Scans the source text of server/raft/*.ts.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const dir = join(import.meta.dir, "../../server/raft");
const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));

const forbidden: Array<[name: string, pattern: RegExp]> = [
  ["bun import", /from\s+["']bun(:[\w-]+)?["']/],
  ["node:* import", /from\s+["']node:/],
  ["hono import", /from\s+["']hono/],
  ["drizzle import", /from\s+["']drizzle/],
  ["libsql import", /from\s+["']@libsql/],
  ["require()", /\brequire\s*\(/],
  ["dynamic import", /\bimport\s*\(/],
  ["Date", /\bDate\s*[.(]|\bnew\s+Date\b/],
  ["Math.random", /Math\.random/],
  ["setTimeout/setInterval", /\bset(Timeout|Interval|Immediate)\s*\(/],
  ["performance.now", /performance\.now/],
  ["process", /\bprocess\./],
  ["Bun global", /\bBun\./],
  ["crypto", /\bcrypto\./],
];

test("server/raft has sources to check", () => {
  expect(files).toContain("raw-node.ts");
  expect(files.length).toBeGreaterThanOrEqual(8);
});

for (const file of files) {
  test(`purity: server/raft/${file} uses no I/O, clock, ambient randomness or timers`, () => {
    const text = readFileSync(join(dir, file), "utf8");
    const hits = forbidden.filter(([, pattern]) => pattern.test(text)).map(([name]) => name);
    expect(hits).toEqual([]);
    // Imports stay inside the core (plus the shared assert and constants modules).
    for (const match of text.matchAll(/from\s+["']([^"']+)["']/g)) {
      const spec = match[1] ?? "";
      expect(spec.startsWith("./") || spec === "../assert.ts" || spec === "../constants.ts").toBe(true);
    }
  });
}
