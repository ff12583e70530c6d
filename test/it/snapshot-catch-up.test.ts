/**
 * A follower that was down while the leader compacted its log past it catches up from a snapshot:
 * the image is built on demand from the leader's applied state (raft-driver.ts withSnapshotImage),
 * travels over the real peer link, and is restored into the follower's tables.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startCluster, type Cluster } from "../support/cluster.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";
import { missingOn, newLedger } from "./support/write-ledger.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { LibsqlLogStore } from "../../server/storage/libsql-log-store.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
});
afterAll(cleanupAll);

test("a follower behind the compacted log catches up by snapshot and has every acknowledged write", async () => {
  const config = join(tempDir(), "node.yaml");
  writeFileSync(config, "snapshotEveryEntries: 200\n");
  cluster = await startCluster({ size: 3, extraArgs: ["--config", config] });
  const group = cluster;
  const leader = await group.waitForLeader();
  const lagging = group.running().find((n) => n.id !== leader.id)!;
  await group.kill(lagging.id, "SIGKILL");

  // Beyond the 1,024 entries the core keeps behind a compaction point, in batches of 20 keys of
  // 4 KiB: a state of about 10 MiB, so the snapshot crosses the link in several fragments.
  const ledger = newLedger();
  for (let request = 0; request < 120; request++) {
    const items = Array.from({ length: 20 }, (_, i) => ({ key: `s${request}-${i}`, value: `v${request}-${i}-`.padEnd(4096, "x") }));
    const response = await fetch(`${leader.url}/api/v1/kv`, { method: "POST", body: JSON.stringify({ items }), headers: { "content-type": "application/json" } });
    expect(response.status).toBe(200);
    for (const item of items) ledger.acknowledged.set(item.key, item.value);
  }
  for (let request = 0; request < 1100; request++) {
    const response = await fetch(`${leader.url}/api/v1/kv/t${request}`, { method: "PUT", body: `t${request}` });
    expect(response.status).toBe(200);
    ledger.acknowledged.set(`t${request}`, `t${request}`);
  }

  await group.restart(lagging.id);
  await group.waitForCaughtUp(20_000);
  expect(await missingOn(lagging.url, ledger)).toEqual([]);
  const status = (await group.status(lagging.id))!;
  expect(status.raft.applied).toBeGreaterThan(1200);

  // It came by snapshot, not by log replay: its durable store holds one, and no log before it.
  await group.kill(lagging.id, "SIGTERM");
  const database = await openDatabase(lagging.dataDir);
  const { persisted } = await new LibsqlLogStore(database).load();
  database.close();
  expect(persisted.snapshot?.meta.index ?? 0).toBeGreaterThan(100);
  expect(persisted.entries[0]?.index ?? Infinity).toBeGreaterThan(persisted.snapshot!.meta.index);
}, 90_000);
