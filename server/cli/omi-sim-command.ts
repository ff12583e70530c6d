/**
 * @module `opsconn omi-sim --port N --data DIR`: runs the OMi receiver simulator (server/omi-sim),
 * the stand-in for OMi's event web service in demos and tests. Stops on SIGTERM/SIGINT.
 */
import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import { UsageError } from "./usage.ts";
import { SimStore } from "../omi-sim/sim-store.ts";
import { createSimApp } from "../omi-sim/sim-app.ts";

export const omiSimHelp = `Usage: opsconn omi-sim [--port N] [--host H] --data DIR

Runs an OMi receiver simulator: POST/GET /opr-web/rest/9.10/event_list (keyed duplicate
suppression, close keys), every raw delivery recorded, fault modes (POST /omi-sim/faults
{"mode": "ok|fail|slow|down"}), operator changes (POST /omi-sim/events/ID/change), counts
(GET /omi-sim/stats). Data in DIR/omi-sim.db (libSQL).

Options:
  -p, --port N     port (default 30100; 0 picks a free one)
      --host H     listen address (default 127.0.0.1)
  -d, --data DIR   data directory (required)
  -h, --help       show this help
`;

export async function runOmiSim(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { port: { type: "string", short: "p" }, host: { type: "string" }, data: { type: "string", short: "d" }, help: { type: "boolean", short: "h" } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return (process.stdout.write(omiSimHelp), 0);
  if (values.data === undefined) throw new UsageError("omi-sim: --data DIR is required");
  const port = Number(values.port ?? 30100);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`omi-sim: --port must be 0..65535 (got '${values.port}')`);
  mkdirSync(values.data, { recursive: true });
  const store = await SimStore.open(values.data);
  const server = Bun.serve({ hostname: values.host ?? "127.0.0.1", port, fetch: createSimApp(store).fetch });
  console.log(JSON.stringify({ msg: "omi-sim started", url: `http://${server.hostname}:${server.port}` }));
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await server.stop(true);
  store.close();
  return 0;
}
