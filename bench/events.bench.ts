/**
 * @module Benchmark `events`: ingest → committed on a majority → forwarded to the OMi receiver
 * simulator, on a 3-node loopback group (separate processes). Single-event requests from 256
 * clients (as the replication benchmark's top level; 64 too), then 100-event batches from 16
 * clients, then a burst of batches from the 256, and the rate at which the burst's backlog then
 * drains to OMi. Requests are spread over all nodes (followers forward to the leader), each client
 * keeping to one node as an event source posts to the one connector URL it is given. Last, the
 * latency from a request's start to the event's arrival in OMi, measured by OMi-side receive times
 * of probe events sent at a modest rate. Each event carries a 128-byte description.
 *
 * The simulator, the load generator and the three nodes share this machine's cores; OMi's share
 * shows as the forwarding rate, which trails the acknowledged rate during a batched run: the outbox
 * holds the difference, and the backlog drains before the next phase. Each batched run also reports
 * the CPU each process used per acknowledged event: where the cores went (the nodes, the simulator,
 * the load generator).
 */
import type { Bench, Metrics } from "./harness.ts";
import { runLoad, type LoadResult } from "./support/load.ts";
import { startCluster, type Cluster } from "../test/support/cluster.ts";
import { cleanupAll } from "../test/support/node-process.ts";
import { startOmiSim, type SimProcess } from "../test/support/omi-sim-process.ts";
import { cpuMeter } from "./support/process-cpu.ts";

const runMs = 4_000;
const burstMs = 2_000;
const warmupMs = 1_000;
const probes = 300;

async function deploy(cluster: Cluster): Promise<void> {
  const leader = await cluster.waitForLeader(15_000);
  const model = {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: cluster.running().map((n) => ({ id: n.id, fqdn: `127.0.0.1:${n.port}` })) },
    policies: [{ name: "bench", type: "event-listener", path: "bench", inputFormat: "json", unmatched: "send", defaults: { category: "bench" } }],
    packages: [{ name: "bench-ha", policies: ["bench"], components: ["events"] }],
    aspects: [{ name: "asp", ciType: "Running Software", packages: ["bench-ha"] }],
    templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
  };
  const put = await fetch(`${leader.url}/api/v1/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(model) });
  const deployed = await fetch(`${leader.url}/api/v1/config/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ template: "tpl" }) });
  if (put.status !== 200 || deployed.status !== 201) throw new Error(`deploy failed: ${put.status} ${deployed.status}`);
  await Bun.sleep(1_500); // the package gets a holder and its first lease
}

/** Waits (bounded) until every package's backlog is forwarded, so one phase does not load the next. */
async function drained(cluster: Cluster): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const status = (await (await fetch(`${cluster.urls()[0]}/api/v1/status`)).json()) as { config?: { outbox?: Array<{ backlog: number }> } };
    if ((status.config?.outbox ?? []).every((o) => o.backlog === 0)) return;
    await Bun.sleep(100);
  }
  throw new Error("the outbox did not drain within 60 s");
}

async function omiEventsDelivered(simUrl: string): Promise<number> {
  return ((await (await fetch(`${simUrl}/omi-sim/stats`)).json()) as { eventsDelivered: number }).eventsDelivered;
}

function describe(label: string, r: LoadResult, perRequest: number): void {
  console.log(`  ${label.padEnd(20)} ${(r.requestsPerS * perRequest).toFixed(0).padStart(8)} events/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms${r.errors ? `  errors ${r.errors} ${JSON.stringify(r.errorStatuses)}` : ""}`);
}

/** Probe events one every 10 ms; latency = OMi's receive time minus the request's start. */
async function ingestToOmi(cluster: Cluster, simUrl: string): Promise<{ p50: number; p99: number }> {
  const urls = cluster.urls();
  const sentAt = new Map<string, number>();
  // The backlog is drained: every event stored after this one is a probe. Polling a page after it
  // keeps the poll cheap however many events the earlier phases left in the simulator.
  const storedBefore = ((await (await fetch(`${simUrl}/omi-sim/stats`)).json()) as { events: number }).events;
  await Promise.all(
    Array.from({ length: probes }, async (_, i) => {
      await Bun.sleep(i * 10);
      const key = `probe:${i}`;
      sentAt.set(key, Date.now());
      await fetch(`${urls[i % urls.length]}/bsmc/rest/events/bench`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: `probe ${i}`, omi_event_key: key }) });
    }),
  );
  for (let i = 0; i < 200; i++) {
    const list = (await (await fetch(`${simUrl}/opr-web/rest/9.10/event_list?format=json&after=${storedBefore}&limit=10000`)).json()) as { event_list: Array<{ key: string; received_at: string }> };
    const latencies = list.event_list.filter((e) => sentAt.has(e.key)).map((e) => Date.parse(e.received_at) - sentAt.get(e.key)!);
    if (latencies.length === probes) {
      latencies.sort((a, b) => a - b);
      return { p50: latencies[Math.ceil(0.5 * probes) - 1]!, p99: latencies[Math.ceil(0.99 * probes) - 1]! };
    }
    await Bun.sleep(100);
  }
  throw new Error("probe events did not all reach OMi");
}

interface BatchedRun {
  readonly load: LoadResult;
  readonly forwardedPerS: number;
  /** CPU µs per acknowledged event: all processes, the nodes, the simulator, the load generator. */
  readonly cpu: { readonly total: number; readonly nodes: number; readonly sim: number; readonly load: number };
}

/** 100-event batches from `clients` sources; where the cores went, metered over the measured window. */
async function batchedRun(cluster: Cluster, sim: SimProcess, clients: number, measuredMs: number): Promise<BatchedRun> {
  const deliveredBefore = await omiEventsDelivered(sim.url);
  const startMs = performance.now();
  const pids: Record<string, number> = { sim: sim.proc.pid, load: process.pid };
  for (const node of cluster.running()) pids[node.id] = node.proc!.pid;
  const meter = Bun.sleep(warmupMs).then(() => cpuMeter(pids));
  const load = await runLoad({ targets: cluster.urls(), clients, targetChoice: "pinned", workload: { kind: "opsconn-events", path: "bench", events: 100 }, durationMs: measuredMs + warmupMs, warmupMs });
  const cores = (await meter).stop();
  const forwardedPerS = ((await omiEventsDelivered(sim.url)) - deliveredBefore) / ((performance.now() - startMs) / 1000);
  describe(`batched x100 c${clients}`, load, 100);
  console.log(`  forwarded to OMi      ${forwardedPerS.toFixed(0).padStart(8)} events/s during the batched run`);
  const usPerEvent = (names: string[]) => (names.reduce((sum, name) => sum + cores[name]!, 0) * 1_000_000) / (load.requestsPerS * 100);
  const nodeIds = cluster.running().map((n) => n.id);
  const cpu = { total: usPerEvent(Object.keys(pids)), nodes: usPerEvent(nodeIds), sim: usPerEvent(["sim"]), load: usPerEvent(["load"]) };
  console.log(`  CPU per event          ${cpu.total.toFixed(1)} µs: nodes ${cpu.nodes.toFixed(1)} (${nodeIds.map((id) => usPerEvent([id]).toFixed(1)).join(" + ")}), OMi simulator ${cpu.sim.toFixed(1)}, load generator ${cpu.load.toFixed(1)}`);
  return { load, forwardedPerS, cpu };
}

export default {
  name: "events",
  async run(): Promise<Metrics> {
    const sim = await startOmiSim();
    const cluster = await startCluster({ size: 3, extraArgs: ["--omi-url", sim.url] });
    try {
      await deploy(cluster);
      const single64 = await runLoad({ targets: cluster.urls(), clients: 64, targetChoice: "pinned", workload: { kind: "opsconn-events", path: "bench", events: 1 }, durationMs: runMs + warmupMs, warmupMs });
      describe("single c64", single64, 1);
      await drained(cluster);
      const single = await runLoad({ targets: cluster.urls(), clients: 256, targetChoice: "pinned", workload: { kind: "opsconn-events", path: "bench", events: 1 }, durationMs: runMs + warmupMs, warmupMs });
      describe("single c256", single, 1);
      await drained(cluster);
      // Batches from 16 clients (the target's measure), then from the 256 of the single-event run: a
      // burst the group accepts faster (larger group commits) while forwarding falls far behind.
      const batched = await batchedRun(cluster, sim, 16, runMs);
      await drained(cluster);
      // Shorter: its backlog (accepted minus forwarded) stays well inside a package's default
      // outbox bounds (1,000,000 events, 256 MiB) even on a machine twice as fast as this one.
      const batched256 = await batchedRun(cluster, sim, 256, burstMs);
      // The burst's backlog, forwarded with no ingest beside it: how fast OMi catches up (after an
      // outage, say). Then the probes below time single events end to end on an empty outbox.
      const drainStartMs = performance.now();
      const deliveredBeforeDrain = await omiEventsDelivered(sim.url);
      await drained(cluster);
      const drainPerS = ((await omiEventsDelivered(sim.url)) - deliveredBeforeDrain) / ((performance.now() - drainStartMs) / 1000);
      console.log(`  backlog drained        ${drainPerS.toFixed(0).padStart(8)} events/s forwarded to OMi with no ingest`);
      const latency = await ingestToOmi(cluster, sim.url);
      console.log(`  ingest to OMi          p50 ${latency.p50} ms  p99 ${latency.p99} ms (${probes} probes, one per 10 ms)`);
      const targets: Array<[string, number, (v: number) => boolean, string]> = [
        ["single-event requests", single.requestsPerS, (v) => v >= 15_000, ">= 15,000 events/s"],
        ["100-event batches", batched.load.requestsPerS * 100, (v) => v >= 100_000, ">= 100,000 events/s"],
      ];
      for (const [what, value, ok, want] of targets) console.log(`    ${what.padEnd(24)} want ${want.padEnd(20)} ${value.toFixed(0)} ${ok(value) ? "met" : "MISSED"}`);
      return {
        events_per_s_single: single.requestsPerS,
        events_per_s_single_c64: single64.requestsPerS,
        events_per_s_batched: batched.load.requestsPerS * 100,
        forwarded_per_s_during_batched: batched.forwardedPerS,
        cpu_us_per_event_batched: batched.cpu.total,
        cpu_us_per_event_batched_nodes: batched.cpu.nodes,
        cpu_us_per_event_batched_omi_sim: batched.cpu.sim,
        cpu_us_per_event_batched_load: batched.cpu.load,
        events_per_s_batched_c256: batched256.load.requestsPerS * 100,
        forwarded_per_s_during_batched_c256: batched256.forwardedPerS,
        cpu_us_per_event_batched_c256: batched256.cpu.total,
        forwarded_per_s_drain: drainPerS,
        ingest_to_omi_p50_ms: latency.p50,
        ingest_to_omi_p99_ms: latency.p99,
        single_p99_ms: single.p99Ms,
        batched_requests_p99_ms: batched.load.p99Ms,
        batched_requests_p99_ms_c256: batched256.load.p99Ms,
      };
    } finally {
      await cluster.stopAll();
      sim.proc.kill("SIGTERM");
      cleanupAll();
    }
  },
} satisfies Bench;
