/**
 * @module `replication`: how fast a 3-node opsconn group commits durable writes, beside a real
 * 3-member etcd on the same loopback and the same load generator. Closed-loop 256-byte writes
 * (opsconn PUT /api/v1/kv/KEY, etcd POST /v3/kv/put) at 1, 16, 64 and 256 clients round-robin over
 * all members (followers forward to the leader in both systems); a batched mode (POST /api/v1/kv,
 * 100 items of 256 B per request); entries per fsync from the leader's raft.stats; RSS of an idle
 * node and of the leader under load. Three alternating rounds, best of each (see bestOfRounds).
 * Ratios opsconn/etcd are computed in the same run. The etcd
 * keys are skipped (with the install hint) when the etcd binary is absent; never installed here.
 */
import { readFileSync } from "node:fs";
import type { Bench, Metrics } from "./harness.ts";
import { runLoad, type LoadResult, type Workload } from "./support/load.ts";
import { withEtcd } from "./support/etcd.ts";
import { startCluster, type Cluster } from "../test/support/cluster.ts";
import { cleanupAll, installExitCleanup } from "../test/support/node-process.ts";

const clientCounts = [1, 16, 64, 256] as const;
const valueBytes = 256;
const keySpace = 1_000;
const runMs = 4_000;
const warmupMs = 1_000;
const batchItems = 100;
const batchClients = 16;
const batchRunMs = 5_000;
const seed = 0x5eed;
/** Each system is measured this many times, alternating; see bestOfRounds. */
const rounds = 3;

const putWorkload: Workload = { kind: "opsconn-put", valueBytes, keySpace };
const etcdWorkload: Workload = { kind: "etcd-put", valueBytes, keySpace };
const batchWorkload: Workload = { kind: "opsconn-batch", items: batchItems, valueBytes, keySpace: 100_000 };

function describe(label: string, r: LoadResult): void {
  const errors = r.errors === 0 ? "" : `  errors ${r.errors} ${JSON.stringify(r.errorStatuses)}`;
  console.log(`  ${label.padEnd(22)} ${r.requestsPerS.toFixed(0).padStart(7)}/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  max ${r.maxMs.toFixed(1)} ms${errors}`);
}

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match?.[1] === undefined ? NaN : Number(match[1]) / 1024;
}

/** Samples a process's RSS every 200 ms while `work` runs; returns the peak in MB. */
async function peakRssDuring<T>(pid: number, work: Promise<T>): Promise<{ value: T; peakMb: number }> {
  let peakMb = rssMb(pid);
  const timer = setInterval(() => (peakMb = Math.max(peakMb, rssMb(pid))), 200);
  try {
    return { value: await work, peakMb: Math.max(peakMb, rssMb(pid)) };
  } finally {
    clearInterval(timer);
  }
}

async function etcdSide(metrics: Metrics): Promise<void> {
  await withEtcd(async (etcd) => {
    for (const clients of clientCounts) {
      const r = await runLoad({ targets: etcd.clientUrls(), clients, workload: etcdWorkload, durationMs: runMs + warmupMs, warmupMs, seed });
      describe(`etcd c${clients}`, r);
      metrics[`etcd_writes_per_s_c${clients}`] = r.requestsPerS;
      metrics[`etcd_p50_ms_c${clients}`] = r.p50Ms;
      metrics[`etcd_p99_ms_c${clients}`] = r.p99Ms;
    }
  });
}

async function leaderPid(cluster: Cluster): Promise<{ id: string; pid: number }> {
  const leader = await cluster.waitForLeader(10_000);
  if (leader.proc === null) throw new Error("leader has no process");
  return { id: leader.id, pid: leader.proc.pid };
}

async function opsconnPuts(cluster: Cluster, metrics: Metrics): Promise<void> {
  for (const clients of clientCounts) {
    const leader = await leaderPid(cluster);
    const before = (await cluster.status(leader.id))?.raft.stats;
    const work = runLoad({ targets: cluster.urls(), clients, workload: putWorkload, durationMs: runMs + warmupMs, warmupMs, seed });
    const { value: r, peakMb } = await peakRssDuring(leader.pid, work);
    const after = (await cluster.status(leader.id))?.raft.stats;
    describe(`opsconn c${clients}`, r);
    metrics[`writes_per_s_c${clients}`] = r.requestsPerS;
    metrics[`p50_ms_c${clients}`] = r.p50Ms;
    metrics[`p99_ms_c${clients}`] = r.p99Ms;
    if (r.errors > 0) metrics[`errors_c${clients}`] = r.errors;
    if (before !== undefined && after !== undefined && after.transactions > before.transactions) {
      metrics[`entries_per_fsync_c${clients}`] = (after.entriesPersisted - before.entriesPersisted) / (after.transactions - before.transactions);
    }
    if (clients === 256) metrics["rss_mb_loaded"] = peakMb;
  }
}

async function opsconnBatched(cluster: Cluster, metrics: Metrics): Promise<void> {
  const leader = await leaderPid(cluster);
  const before = (await cluster.status(leader.id))?.raft.stats;
  const work = runLoad({ targets: cluster.urls(), clients: batchClients, workload: batchWorkload, durationMs: batchRunMs + warmupMs, warmupMs, seed });
  const { value: r, peakMb } = await peakRssDuring(leader.pid, work);
  const after = (await cluster.status(leader.id))?.raft.stats;
  describe(`opsconn batch x${batchItems} c${batchClients}`, r);
  metrics["batched_entries_per_s"] = r.requestsPerS * batchItems;
  metrics["batched_requests_p99_ms"] = r.p99Ms;
  metrics["rss_mb_loaded"] = Math.max(metrics["rss_mb_loaded"] ?? 0, peakMb);
  if (before === undefined || after === undefined) {
    console.log("  raft.stats not in /api/v1/status: entries_per_fsync not measured");
  } else if (after.transactions > before.transactions) {
    // One batch request is one log entry; each fsync'd transaction carries this many of them.
    metrics["entries_per_fsync"] = (after.entriesPersisted - before.entriesPersisted) / (after.transactions - before.transactions);
    metrics["batched_items_per_fsync"] = metrics["entries_per_fsync"] * batchItems;
  }
}

async function opsconnSide(metrics: Metrics): Promise<void> {
  const cluster = await startCluster({ size: 3 });
  try {
    await cluster.waitForLeader(15_000);
    // Idle: elected, a few seconds of heartbeats only; the largest of the three.
    await Bun.sleep(2_000);
    metrics["rss_mb_idle"] = Math.max(...cluster.running().map((n) => cluster.rssBytes(n.id) / (1024 * 1024)));
    await opsconnPuts(cluster, metrics);
    await opsconnBatched(cluster, metrics);
  } catch (error) {
    console.error(await cluster.diagnostics());
    throw error;
  } finally {
    await cluster.stopAll();
  }
}

/**
 * Keeps, for each measurement, the round with the highest rate, together with that same round's
 * latencies and fsync figures, so a key never mixes rounds. Best-of because on a shared 2-core
 * machine interference only ever slows a run down (measured: etcd at 64 clients gave 6,005/s in
 * one run and 3,066/s in another while other work ran); both systems get the same treatment.
 */
function bestOfRounds(rounds: readonly Metrics[]): Metrics {
  const groups: Array<[string, string[]]> = [
    ...clientCounts.map((c): [string, string[]] => [`writes_per_s_c${c}`, [`p50_ms_c${c}`, `p99_ms_c${c}`, `entries_per_fsync_c${c}`, `errors_c${c}`]]),
    ...clientCounts.map((c): [string, string[]] => [`etcd_writes_per_s_c${c}`, [`etcd_p50_ms_c${c}`, `etcd_p99_ms_c${c}`]]),
    ["batched_entries_per_s", ["batched_requests_p99_ms", "entries_per_fsync", "batched_items_per_fsync"]],
  ];
  const best: Metrics = {};
  for (const [lead, companions] of groups) {
    const winner = rounds.filter((r) => r[lead] !== undefined).sort((a, b) => (b[lead] ?? 0) - (a[lead] ?? 0))[0];
    if (winner === undefined) continue;
    for (const key of [lead, ...companions]) if (winner[key] !== undefined) best[key] = winner[key];
  }
  const idle = rounds.map((r) => r["rss_mb_idle"]).filter((v) => v !== undefined);
  const loaded = rounds.map((r) => r["rss_mb_loaded"]).filter((v) => v !== undefined);
  if (idle.length > 0) best["rss_mb_idle"] = Math.max(...idle);
  if (loaded.length > 0) best["rss_mb_loaded"] = Math.max(...loaded);
  best["rounds"] = rounds.length;
  return best;
}

/** opsconn/etcd for every pair measured; > 1 is better for rates, < 1 for latencies. */
function addRatios(metrics: Metrics): void {
  for (const clients of clientCounts) {
    const ours = metrics[`writes_per_s_c${clients}`];
    const theirs = metrics[`etcd_writes_per_s_c${clients}`];
    if (ours !== undefined && theirs !== undefined) metrics[`ratio_writes_c${clients}`] = ours / theirs;
  }
  const pairs = [
    ["ratio_p99_c256", "p99_ms_c256", "etcd_p99_ms_c256"],
    ["ratio_p50_c1", "p50_ms_c1", "etcd_p50_ms_c1"],
  ] as const;
  for (const [name, ours, theirs] of pairs) {
    const a = metrics[ours];
    const b = metrics[theirs];
    if (a !== undefined && b !== undefined) metrics[name] = a / b;
  }
}

/** The targets, checked in the benchmark (never in timed tests) and printed beside the table. */
function printTargets(metrics: Metrics): void {
  const checks: Array<[string, number | undefined, (v: number) => boolean, string]> = [
    ["writes c64 vs etcd", metrics["ratio_writes_c64"], (v) => v >= 2, ">= 2x"],
    ["writes c256 vs etcd", metrics["ratio_writes_c256"], (v) => v >= 2, ">= 2x"],
    ["p99 c256 vs etcd", metrics["ratio_p99_c256"], (v) => v <= 1, "<= 1x"],
    ["p50 c1 vs etcd", metrics["ratio_p50_c1"], (v) => v <= 1, "<= 1x"],
    ["batched entries/s", metrics["batched_entries_per_s"], (v) => v >= 100_000, ">= 100,000"],
    ["rss idle MB", metrics["rss_mb_idle"], (v) => v <= 150, "<= 150"],
  ];
  console.log("  targets:");
  for (const [label, value, met, want] of checks) {
    const shown = value === undefined ? "not measured" : `${value.toFixed(2)} ${met(value) ? "met" : "MISSED"}`;
    console.log(`    ${label.padEnd(22)} want ${want.padEnd(10)} ${shown}`);
  }
}

const bench: Bench = {
  name: "replication",
  async run(): Promise<Metrics> {
    installExitCleanup();
    const measured: Metrics[] = [];
    try {
      // etcd alone, then opsconn alone (they never share the cores), alternating for each round.
      for (let round = 0; round < rounds; round++) {
        const metrics: Metrics = {};
        console.log(`  round ${round + 1} of ${rounds}`);
        await etcdSide(metrics);
        await opsconnSide(metrics);
        measured.push(metrics);
      }
    } finally {
      cleanupAll();
    }
    const metrics = bestOfRounds(measured);
    addRatios(metrics);
    printTargets(metrics);
    return metrics;
  },
};

export default bench;
