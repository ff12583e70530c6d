/**
 * @module Script-driven interaction tests of the Raft core (etcd-io/raft `interaction_test.go`):
 * every test/raft/testdata/*.txt runs in a fresh InteractionEnv and each block's output must match
 * the text below its `----`. `REWRITE=1 bun test test/raft/interaction.test.ts` regenerates the
 * expected outputs in place; review that diff as carefully as code, since it is the specification.
 */
import { test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "./interaction/commands.ts";
import { formatMismatches, runScriptFile } from "./interaction/datadriven.ts";
import { InteractionEnv } from "./interaction/env.ts";

const testdataDir = join(import.meta.dir, "testdata");
const rewrite = process.env["REWRITE"] === "1";

const files = readdirSync(testdataDir)
  .filter((name) => name.endsWith(".txt"))
  .sort();

for (const file of files) {
  test(file, () => {
    const env = new InteractionEnv();
    const result = runScriptFile(join(testdataDir, file), (d) => runCommand(env, d), { rewrite });
    if (!rewrite && result.mismatches.length > 0) throw new Error(formatMismatches(file, result.mismatches));
  });
}
