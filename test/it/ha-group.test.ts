/**
 * The durable HA group as separate OS processes on 127.0.0.1: real sockets, real kill -9, real
 * SIGSTOP. What an operator relies on: an acknowledged write survives any minority failure, exists
 * on every survivor, and is applied once; a deposed leader acknowledges nothing it did not commit.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { startCluster, type Cluster } from "../support/cluster.ts";
import { cleanupAll } from "../support/node-process.ts";
import { missingOn, newLedger, putsPerKeyInLog, writeUntil } from "./support/write-ledger.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
});
afterAll(cleanupAll);

async function expectLedgerOnSurvivors(group: Cluster, ledger: ReturnType<typeof newLedger>): Promise<void> {
  await group.waitForCaughtUp(15_000);
  for (const node of group.running()) expect(await missingOn(node.url, ledger)).toEqual([]);
}

/** Stops the survivors cleanly and reads their Raft logs: no key may be committed twice. */
async function expectAppliedOnce(group: Cluster, ledger: ReturnType<typeof newLedger>): Promise<void> {
  const survivors = group.running();
  for (const node of survivors) await group.kill(node.id, "SIGTERM");
  for (const node of survivors) {
    const counts = await putsPerKeyInLog(node.dataDir);
    const twice = [...counts].filter(([, n]) => n > 1).map(([key]) => key);
    expect(twice).toEqual([]);
    for (const key of ledger.acknowledged.keys()) expect(counts.get(key)).toBe(1);
  }
}

const wait = (ms: number) => Bun.sleep(ms);

describe("HA group, multi-process", () => {
  for (const size of [3, 5]) {
    test(`${size} nodes: kill -9 the leader during continuous writes loses no acknowledged write`, async () => {
      cluster = await startCluster({ size });
      const group = cluster;
      const leader = await group.waitForLeader();
      const ledger = newLedger();
      const load = writeUntil({ cluster: group, ledger, writers: 8, until: wait(3_000) });
      await wait(1_000);
      await group.kill(leader.id, "SIGKILL");
      await load;
      expect(ledger.acknowledged.size).toBeGreaterThan(100);
      await expectLedgerOnSurvivors(group, ledger);
      await expectAppliedOnce(group, ledger);
    }, 60_000);
  }

  test("a SIGSTOPped leader, deposed meanwhile, acknowledges nothing it did not commit after SIGCONT", async () => {
    cluster = await startCluster({ size: 3 });
    const group = cluster;
    const old = await group.waitForLeader();
    await group.node(old.id).proc!.kill("SIGSTOP");
    const others = () => group.running().filter((n) => n.id !== old.id).map((n) => n.url);
    // Writes sent to the frozen leader wait in its socket queue until it wakes up deposed.
    const ledger = newLedger();
    const toFrozen = writeUntil({ cluster: group, ledger, writers: 4, until: wait(5_000), targets: () => [old.url], prefix: "frozen", writesMax: 1 });
    // Writes forwarded to the frozen leader come back 504 (outcome unknown) after the forward
    // timeout; the writers then reach the new leader.
    const toOthers = writeUntil({ cluster: group, ledger, writers: 4, until: wait(5_000), targets: others, prefix: "live" });
    await wait(3_000);
    expect((await group.waitForLeader()).id).not.toBe(old.id);
    group.node(old.id).proc!.kill("SIGCONT");
    await Promise.all([toFrozen, toOthers]);
    expect([...ledger.acknowledged.keys()].some((k) => k.startsWith("live"))).toBe(true);
    await expectLedgerOnSurvivors(group, ledger);
    await expectAppliedOnce(group, ledger);
  }, 60_000);

  test("a killed follower restarts and catches up, and 5 nodes keep working with 2 down", async () => {
    cluster = await startCluster({ size: 5 });
    const group = cluster;
    const leader = await group.waitForLeader();
    const followers = group.running().filter((n) => n.id !== leader.id);
    await group.kill(followers[0]!.id, "SIGKILL");
    await group.kill(followers[1]!.id, "SIGKILL");
    const ledger = newLedger();
    await writeUntil({ cluster: group, ledger, writers: 4, until: wait(1_500) });
    expect(ledger.acknowledged.size).toBeGreaterThan(50);
    await group.restart(followers[0]!.id);
    await expectLedgerOnSurvivors(group, ledger);
    expect(await missingOn(followers[0]!.url, ledger)).toEqual([]);
  }, 60_000);
});
