/**
 * Events end to end, in separate processes: 3 nodes and the OMi receiver simulator. A source sends
 * batches to random nodes while the package's holder is killed with -9; every accepted event
 * reaches OMi (none lost), duplicates are bounded by one batch per failover, and each source's
 * order is kept.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { startCluster, type Cluster } from "../support/cluster.ts";
import { bunPath, cleanupAll, freePorts, repoRoot, tempDir, trackProcess } from "../support/node-process.ts";

let cluster: Cluster | null = null;
let sim: Subprocess | null = null;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
  sim?.kill("SIGKILL");
  sim = null;
});
afterAll(cleanupAll);

async function startSim(): Promise<string> {
  const [port] = freePorts(1);
  sim = Bun.spawn([bunPath, "server/main.ts", "omi-sim", "--port", String(port), "--data", tempDir()], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
  trackProcess(sim as never);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${url}/omi-sim/stats`).catch(() => null))?.ok) return url;
    await Bun.sleep(50);
  }
  throw new Error("omi-sim did not start");
}

async function holderOf(group: Cluster, pkg: string): Promise<string | null> {
  for (const node of group.running()) {
    const status = (await (await fetch(`${node.url}/api/v1/status`).catch(() => null))?.json().catch(() => null)) as { packages?: Array<{ name: string; activeHere: boolean }> } | null;
    if (status?.packages?.some((p) => p.name === pkg && p.activeHere)) return node.id;
  }
  return null;
}

test("a kill -9 of the forwarding node loses no accepted event and re-sends at most one batch", async () => {
  const simUrl = await startSim();
  cluster = await startCluster({ size: 3, extraArgs: ["--omi-url", simUrl] });
  const group = cluster;
  const leader = await group.waitForLeader();
  const model = {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: group.running().map((n) => ({ id: n.id, fqdn: `127.0.0.1:${n.port}` })) },
    policies: [{ name: "webhook", type: "event-listener", path: "webhook", inputFormat: "json", unmatched: "send", defaults: { category: "it" } }],
    packages: [{ name: "events-ha", policies: ["webhook"], components: ["events"] }],
    aspects: [{ name: "asp", ciType: "Running Software", packages: ["events-ha"] }],
    templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
  };
  expect((await fetch(`${leader.url}/api/v1/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(model) })).status).toBe(200);
  expect((await fetch(`${leader.url}/api/v1/config/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ template: "tpl" }) })).status).toBe(201);
  for (let i = 0; i < 100 && (await holderOf(group, "events-ha")) === null; i++) await Bun.sleep(50);

  const batches = 40;
  const perBatch = 25;
  let killed: string | null = null;
  for (let b = 0; b < batches; b++) {
    if (b === 15) {
      killed = await holderOf(group, "events-ha");
      expect(killed).not.toBeNull();
      await group.kill(killed!, "SIGKILL");
    }
    const events = Array.from({ length: perBatch }, (_, i) => {
      const n = b * perBatch + i;
      return { title: `event ${n}`, severity: "major", omi_event_key: `src:${n}`, source_event_id: `src-${n}` };
    });
    // A request that fails (its node died, an election) is re-sent, as a source would; the
    // Idempotency-Key keeps that from duplicating anything.
    for (let attempt = 0; ; attempt++) {
      const targets = group.running();
      const target = targets[(b + attempt) % targets.length]!;
      const response = await fetch(`${target.url}/bsmc/rest/events/webhook`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": `batch-${b}` },
        body: JSON.stringify(events),
      }).catch(() => null);
      if (response?.status === 202) break;
      expect(attempt).toBeLessThan(100);
      await Bun.sleep(50);
    }
  }
  const total = batches * perBatch;
  let stats = { events: 0, eventsDelivered: 0, deliveries: 0 };
  for (let i = 0; i < 200 && stats.events < total; i++) {
    stats = (await (await fetch(`${simUrl}/omi-sim/stats`)).json()) as typeof stats;
    await Bun.sleep(50);
  }
  const duplicates = stats.eventsDelivered - total;
  console.log(`OMi holds ${stats.events} distinct events of ${total}; ${stats.deliveries} deliveries, ${duplicates} events re-sent after the kill of ${killed}`);
  expect(stats.events).toBe(total);
  expect(duplicates).toBeLessThanOrEqual(500);
  // One source, one order: OMi's ids follow the events' numbers.
  const list = (await (await fetch(`${simUrl}/opr-web/rest/9.10/event_list?format=json`)).json()) as { event_list: Array<{ id: string; key: string }> };
  const numbers = list.event_list.map((e) => Number(e.key.slice("src:".length)));
  expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
}, 90_000);
