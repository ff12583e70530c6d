/**
 * @module One load-generator worker process: runs the LoadOptions given as argv[2] (JSON) with
 * runLoad and prints the result as one JSON line, so runLoadParallel can use both cores for the
 * client side when a single event loop would saturate first.
 */
import { runLoad, type LoadOptions } from "./load.ts";

const plan = JSON.parse(Bun.argv[2] ?? "null") as LoadOptions | null;
if (plan === null) {
  console.error("usage: load-worker.ts '<LoadOptions JSON>'");
  process.exit(2);
}
const result = await runLoad(plan);
process.stdout.write(JSON.stringify({ ...result, latenciesMs: Array.from(result.latenciesMs) }) + "\n");
