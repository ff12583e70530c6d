/**
 * HA packages across real processes: a 3-node group deploys a template whose packages each hold a
 * pull policy polling an HTTP source run by this test. The source records every poll with the
 * polling node, package and epoch (request headers), so the test sees who acted and when:
 * - each package is polled by exactly one node;
 * - kill -9 of a package's holder moves it to a survivor within the bound;
 * - cutting a holder off from its peers (test-only partition switch) makes it stop polling before
 *   the new holder starts, shown by the timestamps of their polls.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { startCluster, type Cluster } from "../support/cluster.ts";
import { cleanupAll } from "../support/node-process.ts";
import { firstPollElsewhere, packagesOn, pullPackagesModel, settledHolders as settledHoldersOf, startPollSource, until, type PollSource } from "../support/ha-packages.ts";

let source: PollSource;
let cluster: Cluster | null = null;

beforeAll(() => {
  source = startPollSource();
});
afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
});
afterAll(() => {
  source.stop();
  cleanupAll();
});

const packageNames = ["p1", "p2", "p3"];
const settledHolders = (group: Cluster, timeoutMs: number) => settledHoldersOf(group, packageNames, timeoutMs);

async function deploy(group: Cluster): Promise<void> {
  const leader = await group.waitForLeader();
  const url = group.running().find((n) => n.id !== leader.id)!.url; // through a follower: it forwards
  const put = await fetch(`${url}/api/v1/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(pullPackagesModel(group.running(), source, packageNames)) });
  expect(put.status).toBe(200);
  const deployed = await fetch(`${url}/api/v1/config/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ template: "opsconn-system" }) });
  expect(deployed.status).toBe(201);
  expect(((await deployed.json()) as { version: number }).version).toBe(1);
}

test("each package runs on exactly one node, balanced; kill -9 of a holder moves its package to a survivor within the bound", async () => {
  cluster = await startCluster({ size: 3, extraArgs: ["--test-faults"] });
  const group = cluster;
  await deploy(group);
  const holders = await settledHolders(group, 10_000);
  // Three packages of weight 1 on three nodes: one each.
  expect(new Set([...holders.values()].map((h) => h.node)).size).toBe(3);
  // Polls run every second: a 2.5 s window sees the holder at least twice, even with one poll late.
  await Bun.sleep(3000);
  for (const name of packageNames) {
    const pollers = new Set(source.polls.filter((p) => p.pkg === name && p.atMs > Date.now() - 2500).map((p) => p.node));
    expect([...pollers]).toEqual([holders.get(name)!.node]);
  }

  // Every node reports running the deployed version (through its lease renewals).
  await until("every node reporting version 1", 5_000, async () => {
    const body = (await (await fetch(`${group.running()[0]!.url}/api/v1/config/deployments`)).json()) as { nodes: Record<string, { runningVersion: number }> };
    return group.running().every((n) => body.nodes[n.id]?.runningVersion === 1) ? true : null;
  });

  // A holder that is not the leader: the group keeps its leader and plans at once.
  const leader = await group.waitForLeader();
  const [name, victim] = [...holders].find(([, h]) => h.node !== leader.id)!;
  const killedAtMs = Date.now();
  await group.kill(victim.node, "SIGKILL");
  const moved = await until(`${name} running on a survivor`, 10_000, async () => firstPollElsewhere(source, name, victim.node, killedAtMs));
  const takeoverMs = moved.atMs - killedAtMs;
  console.log(`${name} taken over by ${moved.node} at epoch ${moved.epoch}, ${takeoverMs} ms after kill -9 of ${victim.node}`);
  expect(moved.epoch).toBeGreaterThan(victim.epoch);
  // The failure window is the lease (500 ms) plus the leader's margin (100 ms); the move itself (one
  // plan, the new holder's first renewal and poll) must fit in a second after it. Issue 5 asks this test to show the bound; `npm run bench -- takeover` shows its spread over 20 trials (650-1,150 ms in two runs).
  expect(takeoverMs).toBeLessThan(600 + 1000);
  const after = await settledHolders(group, 10_000);
  expect(after.get(name)!.node).not.toBe(victim.node);
  // The dead node's share went to the survivors, one each side: 2 + 1.
  expect(new Set([...after.values()].map((h) => h.node)).size).toBe(2);
}, 60_000);

test("kill -9 of the leader that holds a package: the next leader moves it without a blanket wait", async () => {
  cluster = await startCluster({ size: 3, extraArgs: ["--test-faults"] });
  const group = cluster;
  await deploy(group);
  const holders = await settledHolders(group, 10_000);
  const leader = await group.waitForLeader();
  const [name, victim] = [...holders].find(([, h]) => h.node === leader.id)!;
  const killedAtMs = Date.now();
  await group.kill(victim.node, "SIGKILL");
  const moved = await until(`${name} running on a survivor`, 10_000, async () => firstPollElsewhere(source, name, victim.node, killedAtMs));
  const takeoverMs = moved.atMs - killedAtMs;
  console.log(`${name} (held by the leader ${victim.node}) taken over by ${moved.node} ${takeoverMs} ms after kill -9`);
  // An election (300-600 ms) runs while the dead leader's lease (500 + 100 ms) lapses; the survivors
  // already know that lease from applying its renewals, so the new leader need not wait another one.
  expect(takeoverMs).toBeLessThan(600 + 1000);
}, 60_000);

/** When a node's log says it started or stopped running `pkg` (its own clock, ms). */
function runnerEvents(group: Cluster, nodeId: string, pkg: string, msg: "package started here" | "package stopped here"): number[] {
  return group
    .node(nodeId)
    .output.map((line) => {
      try {
        // Lines are kept as "[n2#1 out] {json}".
        return JSON.parse(line.slice(line.indexOf("{"))) as { time: string; msg: string; fields?: { package?: string } };
      } catch {
        return null;
      }
    })
    .filter((entry) => entry !== null && entry.msg === msg && entry.fields?.package === pkg)
    .map((entry) => Date.parse(entry!.time));
}

test("a holder cut off from its peers stops acting before the new holder starts", async () => {
  cluster = await startCluster({ size: 3, extraArgs: ["--test-faults"], logLevel: "info" });
  const group = cluster;
  await deploy(group);
  const holders = await settledHolders(group, 10_000);
  const leader = await group.waitForLeader();
  // Cut off a holder that is not the leader, so the majority keeps its leader and plans at once.
  const [name, holder] = [...holders].find(([, h]) => h.node !== leader.id)!;
  const isolated = group.node(holder.node);
  const others = group.running().filter((n) => n.id !== holder.node).map((n) => n.id);
  const cutAtMs = Date.now();
  const cut = await fetch(`${isolated.url}/api/v1/test/partition`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ peers: others }) });
  expect(cut.status).toBe(200);
  const firstNew = await until(`${name} polled by a node other than ${holder.node}`, 10_000, async () => firstPollElsewhere(source, name, holder.node, cutAtMs));
  // Let the old holder run on for a while: it must stay silent however long the partition lasts.
  await Bun.sleep(2500);
  const oldAfterCut = source.polls.filter((p) => p.pkg === name && p.node === holder.node && p.atMs >= cutAtMs);
  const lastOld = oldAfterCut.at(-1)?.atMs ?? cutAtMs;
  console.log(`${name}: ${holder.node} polled ${oldAfterCut.length}x after the cut, last at +${lastOld - cutAtMs} ms; ${firstNew.node} took over at +${firstNew.atMs - cutAtMs} ms (epoch ${holder.epoch} -> ${firstNew.epoch})`);
  expect(lastOld).toBeLessThan(firstNew.atMs);
  expect(source.polls.some((p) => p.pkg === name && p.node === holder.node && p.atMs > firstNew.atMs)).toBe(false);
  expect(firstNew.epoch).toBeGreaterThan(holder.epoch);
  // The runners' own records: the old holder stopped acting (lease lapsed) before the new one began.
  const stoppedOld = runnerEvents(group, holder.node, name, "package stopped here").filter((t) => t >= cutAtMs);
  const startedNew = runnerEvents(group, firstNew.node, name, "package started here").filter((t) => t >= cutAtMs);
  console.log(`${name}: ${holder.node} stopped at +${stoppedOld[0]! - cutAtMs} ms, ${firstNew.node} started at +${startedNew[0]! - cutAtMs} ms`);
  expect(stoppedOld.length).toBe(1);
  expect(startedNew.length).toBeGreaterThanOrEqual(1);
  expect(stoppedOld[0]!).toBeLessThan(startedNew[0]!);
  // The isolated node knows it holds nothing it may act on.
  expect((await packagesOn(isolated.url)).some((p) => p.activeHere)).toBe(false);

  // Healed, it rejoins and gets work back (gradually: one package per plan).
  await fetch(`${isolated.url}/api/v1/test/partition`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ peers: [] }) });
  const back = await until(`${holder.node} holding a package again`, 15_000, async () => {
    const now = await settledHolders(group, 5_000);
    return [...now.values()].some((h) => h.node === holder.node) ? now : null;
  });
  expect(new Set([...back.values()].map((h) => h.node)).size).toBe(3);
}, 60_000);
