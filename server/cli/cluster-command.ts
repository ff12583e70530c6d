/**
 * @module `opsconn cluster list|add|remove`: membership through any node's HTTP API (a non-leader
 * relays changes to the leader). Prints what the group answered; exit 1 when it refused.
 */
import { parseArgs } from "node:util";
import { UsageError } from "./usage.ts";
import { isAddress } from "../config/node-config.ts";

export const clusterHelp = `Usage: opsconn cluster <list|add|remove> [options]

  opsconn cluster list                        the group's nodes, their roles and the leader
  opsconn cluster add ID HOST:PORT            add a node: it joins as a learner, catches up, then votes
  opsconn cluster remove ID                   remove a node from the group

Start the new node first with --join and an --initial-cluster naming the current members.

Options:
  -n, --node URL     any node of the group (default http://127.0.0.1:30005)
  -h, --help         show this help
`;

export async function runCluster(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { node: { type: "string", short: "n" }, help: { type: "boolean", short: "h" } },
    strict: true,
    allowPositionals: true,
  });
  const [action, ...rest] = positionals;
  if (values.help || action === undefined) {
    process.stdout.write(clusterHelp);
    return values.help ? 0 : 2;
  }
  const base = (values.node ?? "http://127.0.0.1:30005").replace(/\/+$/, "");
  if (action === "list" && rest.length === 0) return call(`${base}/api/v1/cluster/nodes`, { method: "GET" });
  if (action === "add" && rest.length === 2) {
    const [id, address] = rest as [string, string];
    if (!isAddress(address)) throw new UsageError(`cluster add: '${address}' is not HOST:PORT`);
    return call(`${base}/api/v1/cluster/nodes`, { method: "POST", body: JSON.stringify({ id, address }), headers: { "content-type": "application/json" } });
  }
  if (action === "remove" && rest.length === 1) return call(`${base}/api/v1/cluster/nodes/${encodeURIComponent(rest[0]!)}`, { method: "DELETE" });
  throw new UsageError(`cluster: expected 'list', 'add ID HOST:PORT' or 'remove ID' (try 'opsconn cluster --help')`);
}

async function call(url: string, init: RequestInit): Promise<number> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(90_000) });
  } catch (error) {
    throw new Error(`cannot reach ${url}: ${(error as Error).message}`);
  }
  const body = await response.text();
  if (!response.ok) {
    console.error(`opsconn: ${response.status} ${body}`);
    return 1;
  }
  console.log(JSON.stringify(JSON.parse(body), null, 2));
  return 0;
}
