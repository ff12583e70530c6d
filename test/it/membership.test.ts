/**
 * Connected servers change under load: a fourth node joins (learner → catch-up → voter) and a
 * founder leaves while writers keep going; every acknowledged write ends up on every member,
 * the newcomer included.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { startCluster, type Cluster } from "../support/cluster.ts";
import { bunPath, cleanupAll, startNode, tempDir, type RunningNode } from "../support/node-process.ts";
import { missingOn, newLedger, writeUntil } from "./support/write-ledger.ts";

let cluster: Cluster | null = null;
let joiner: RunningNode | null = null;
afterEach(async () => {
  joiner?.proc.kill("SIGKILL");
  joiner = null;
  await cluster?.stopAll();
  cluster = null;
});
afterAll(cleanupAll);

async function members(url: string): Promise<Array<{ id: string; role: string }>> {
  return ((await (await fetch(`${url}/api/v1/cluster/nodes`)).json()) as { nodes: Array<{ id: string; role: string }> }).nodes;
}

test("a node joins and a founder leaves while writes continue", async () => {
  cluster = await startCluster({ size: 3 });
  const group = cluster;
  const leader = await group.waitForLeader();
  const follower = group.running().find((n) => n.id !== leader.id)!;
  const existing = group.running().map((n) => `${n.id}=${new URL(n.url).host}`);
  const secret = group.secret;

  const ledger = newLedger();
  let stopWriting!: () => void;
  const writing = new Promise<void>((resolve) => (stopWriting = resolve));
  const load = writeUntil({ cluster: group, ledger, writers: 6, until: writing, targets: () => group.running().map((n) => n.url) });
  await Bun.sleep(300);

  joiner = await startNode([bunPath, "server/main.ts"], ["--node-id", "n4", "--data-dir", tempDir(), "--join", "--initial-cluster", existing.join(","), "--cluster-secret", secret, "--log-level", "info"]);
  const added = await fetch(`${follower.url}/api/v1/cluster/nodes`, { method: "POST", body: JSON.stringify({ id: "n4", address: new URL(joiner.url).host }), headers: { "content-type": "application/json" } });
  expect(added.status).toBe(201);
  // The node list is this node's applied view, not a linearizable read: a node that lost the
  // leadership meanwhile applies the promotion a moment later.
  const roleOfN4 = async () => (await members(leader.url)).find((m) => m.id === "n4")?.role;
  for (let i = 0; i < 40 && (await roleOfN4()) !== "voter"; i++) await Bun.sleep(50);
  expect(await roleOfN4()).toBe("voter");

  const removed = await fetch(`${leader.url}/api/v1/cluster/nodes/${follower.id}`, { method: "DELETE" });
  expect(removed.status).toBe(200);
  expect((await members(leader.url)).map((m) => m.id)).not.toContain(follower.id);
  await Bun.sleep(500);
  stopWriting();
  await load;
  expect(ledger.acknowledged.size).toBeGreaterThan(100);

  await group.kill(follower.id, "SIGTERM");
  await group.waitForCaughtUp(15_000);
  const remaining = [...group.running().map((n) => n.url), joiner.url];
  // The newcomer learns the commit index from the leader's next heartbeat; give it a moment.
  for (let i = 0; i < 100 && (await missingOn(joiner.url, ledger)).length > 0; i++) await Bun.sleep(50);
  for (const url of remaining) expect(await missingOn(url, ledger)).toEqual([]);
}, 90_000);
