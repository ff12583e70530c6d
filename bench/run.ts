/**
 * @module `npm run bench [-- NAME...]`: runs every bench/*.bench.ts (or the named ones) one after
 * another, so they never compete for the two cores.
 */
import { Glob } from "bun";
import { join } from "node:path";
import { printTable, writeResult, type Bench } from "./harness.ts";

const wanted = new Set(process.argv.slice(2));
const files = [...new Glob("*.bench.ts").scanSync(import.meta.dir)].sort();
const selected = files.filter((f) => wanted.size === 0 || wanted.has(f.replace(/\.bench\.ts$/, "")) || [...wanted].some((w) => f.startsWith(`${w}`)));
if (selected.length === 0) {
  console.error(`no benchmark matches ${[...wanted].join(", ")}; have: ${files.join(", ")}`);
  process.exit(2);
}
for (const file of selected) {
  const mod = (await import(join(import.meta.dir, file))) as { default: Bench };
  const metrics = await mod.default.run();
  printTable(mod.default.name, metrics);
  console.log(`  -> ${writeResult(mod.default.name, metrics)}`);
}
