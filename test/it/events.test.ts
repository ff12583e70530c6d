/**
 * Events end to end, in separate processes: 3 nodes and the OMi receiver simulator. A source sends
 * batches to random nodes while the package's holder is killed with -9; every accepted event
 * reaches OMi (none lost), duplicates are bounded by one batch per failover, and each source's
 * order is kept. Bad input is refused whole; a full disk budget refuses, never drops.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { holderOf, waitForHolder } from "../support/ha-packages.ts";
import { startCluster, type Cluster } from "../support/cluster.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startOmiSim } from "../support/omi-sim-process.ts";
import { forwardingLimits } from "../../server/constants.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { LibsqlLogStore } from "../../server/storage/libsql-log-store.ts";

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
  const started = await startOmiSim();
  sim = started.proc;
  return started.url;
}

async function deployListener(group: Cluster, packageSettings: Record<string, unknown> = {}): Promise<void> {
  const leader = await group.waitForLeader();
  const model = {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: group.running().map((n) => ({ id: n.id, fqdn: `127.0.0.1:${n.port}` })) },
    policies: [
      { name: "webhook", type: "event-listener", path: "webhook", inputFormat: "json", unmatched: "send", defaults: { category: "it" } },
      { name: "nagios", type: "event-listener", path: "nagios", inputFormat: "xml", unmatched: "send" },
      {
        name: "alertmanager",
        type: "event-listener",
        path: "alertmanager",
        inputFormat: "json",
        unmatched: "send",
        mapping: { each: "alerts", fields: { title: "labels.alertname", time_created: "startsAt" } },
      },
    ],
    packages: [{ name: "events-ha", policies: ["webhook", "nagios", "alertmanager"], components: ["events"], ...packageSettings }],
    aspects: [{ name: "asp", ciType: "Running Software", packages: ["events-ha"] }],
    templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
  };
  expect((await fetch(`${leader.url}/api/v1/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(model) })).status).toBe(200);
  expect((await fetch(`${leader.url}/api/v1/config/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ template: "tpl" }) })).status).toBe(201);
  await waitForHolder(group, "events-ha");
}

test("20,000 events from 4 sources to random nodes; the forwarding node killed -9 twice and OMi down 5 s: none lost, bounded duplicates, each source's order kept", async () => {
  const simUrl = await startSim();
  cluster = await startCluster({ size: 3, extraArgs: ["--omi-url", simUrl] });
  const group = cluster;
  await deployListener(group);
  const sources = 4;
  const batchesPerSource = 50;
  const perBatch = 100;
  const total = sources * batchesPerSource * perBatch;
  const killed: string[] = [];
  let sent = 0;
  const restarts: Promise<void>[] = [];
  const chaos = (async () => {
    // Bounded: each step waits for progress, at most a few seconds.
    for (const [atSent, action] of [[4_000, "kill"], [9_000, "omi-down"], [14_000, "kill"]] as const) {
      for (let i = 0; i < 600 && sent < atSent; i++) await Bun.sleep(20);
      if (action === "omi-down") {
        await fetch(`${simUrl}/omi-sim/faults`, { method: "POST", body: JSON.stringify({ mode: "down" }), headers: { "content-type": "application/json" } });
        await Bun.sleep(5_000);
        await fetch(`${simUrl}/omi-sim/faults`, { method: "POST", body: JSON.stringify({ mode: "ok" }), headers: { "content-type": "application/json" } });
        continue;
      }
      const holder = await holderOf(group, "events-ha");
      if (holder === null || group.running().length < 3) continue;
      killed.push(holder);
      await group.kill(holder, "SIGKILL");
      // Bring it back after a while, so the second kill still leaves a majority (awaited below, so
      // a restart never outlives the test).
      restarts.push(Bun.sleep(1_500).then(() => group.restart(holder)));
    }
  })();
  await Promise.all(
    Array.from({ length: sources }, async (_, source) => {
      for (let b = 0; b < batchesPerSource; b++) {
        const events = Array.from({ length: perBatch }, (_, i) => {
          const n = b * perBatch + i;
          return { title: `s${source} event ${n}`, severity: "major", omi_event_key: `s${source}:${n}`, source_event_id: `s${source}-${n}` };
        });
        // A request that fails (its node died, an election) is re-sent, as a source would; the
        // Idempotency-Key keeps that from duplicating anything.
        for (let attempt = 0; ; attempt++) {
          const targets = group.running();
          const target = targets[Math.floor(Math.random() * targets.length)]!;
          const response = await fetch(`${target.url}/bsmc/rest/events/webhook`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": `s${source}-b${b}` },
            body: JSON.stringify(events),
            signal: AbortSignal.timeout(15_000),
          }).catch(() => null);
          if (response?.status === 202) break;
          expect(attempt).toBeLessThan(400);
          await Bun.sleep(50);
        }
        sent += perBatch;
      }
    }),
  );
  await chaos;
  await Promise.all(restarts);
  let stats = { events: 0, eventsDelivered: 0, deliveries: 0 };
  for (let i = 0; i < 600 && stats.events < total; i++) {
    stats = (await (await fetch(`${simUrl}/omi-sim/stats`)).json()) as typeof stats;
    await Bun.sleep(50);
  }
  const duplicates = stats.eventsDelivered - total;
  console.log(`OMi holds ${stats.events} distinct events of ${total}; ${stats.deliveries} deliveries; ${duplicates} events re-sent; killed ${killed.join(", ")}`);
  expect(killed.length).toBe(2);
  expect(stats.events).toBe(total);
  // At most one batch re-sent per failover.
  expect(duplicates).toBeLessThanOrEqual(forwardingLimits.batchEventsMax * killed.length);
  const list = (await (await fetch(`${simUrl}/opr-web/rest/9.10/event_list?format=json`)).json()) as { event_list: Array<{ key: string }> };
  for (let source = 0; source < sources; source++) {
    const numbers = list.event_list.filter((e) => e.key.startsWith(`s${source}:`)).map((e) => Number(e.key.split(":")[1]));
    expect(numbers.length).toBe(batchesPerSource * perBatch);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
  }
}, 180_000);

test("bad input: each a 4xx naming the problem, and nothing committed", async () => {
  const simUrl = await startSim();
  cluster = await startCluster({ size: 3, extraArgs: ["--omi-url", simUrl] });
  const group = cluster;
  await deployListener(group);
  const url = group.running()[0]!.url;
  const post = (path: string, type: string, body: string) => fetch(`${url}/bsmc/rest/events/${path}`, { method: "POST", headers: { "content-type": type }, body });
  const cases: Array<[string, Promise<Response>, number, string]> = [
    ["malformed XML", post("nagios", "text/xml", "<event_data><title>x</event_data>"), 400, "malformed"],
    ["a DOCTYPE with entities", post("nagios", "text/xml", '<!DOCTYPE a [<!ENTITY b "c">]><event_data><title>&b;</title></event_data>'), 400, "DOCTYPE"],
    ["an oversized body", post("nagios", "text/xml", "x".repeat(17 * 1024 * 1024)), 413, "exceeds"],
    ["a wrong content type", post("nagios", "text/plain", "x"), 415, "content-type"],
    ["an unknown policy path", post("nope", "application/json", "{}"), 404, "nope"],
    ["a mapping that yields invalid events", post("alertmanager", "application/json", JSON.stringify({ alerts: [{ labels: { alertname: "x" }, startsAt: "someday" }] })), 400, "time_created"],
  ];
  for (const [name, request, status, fragment] of cases) {
    const response = await request;
    const body = (await response.json()) as { error?: { message?: string } };
    expect([name, response.status]).toEqual([name, status]);
    expect(body.error?.message ?? "").toContain(fragment);
  }
  const statusBody = (await (await fetch(`${url}/api/v1/status`)).json()) as { config: { outbox: Array<{ backlog: number }> } };
  expect(statusBody.config.outbox.reduce((n, o) => n + o.backlog, 0)).toBe(0);
  expect(((await (await fetch(`${simUrl}/omi-sim/stats`)).json()) as { deliveries: number }).deliveries).toBe(0);
}, 60_000);

test("with OMi down and the log compacted every 50 entries, undelivered events kept in compacted entries survive kill -9 of every node: all arrive once OMi is back", async () => {
  const simUrl = await startSim();
  await fetch(`${simUrl}/omi-sim/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode: "down" }) });
  const config = join(tempDir(), "node.yaml");
  writeFileSync(config, "snapshotEveryEntries: 50\n");
  cluster = await startCluster({ size: 3, extraArgs: ["--omi-url", simUrl, "--config", config] });
  const group = cluster;
  await deployListener(group);
  // 300 requests, each its own entry or nearly: six compactions pass entries still holding events.
  const requests = 300;
  const perRequest = 20;
  for (let r = 0; r < requests; r++) {
    const events = Array.from({ length: perRequest }, (_, i) => ({ title: `kept ${r}/${i}`, severity: "minor", omi_event_key: `kept:${r}:${i}` }));
    for (let attempt = 0; ; attempt++) {
      const targets = group.running();
      const response = await fetch(`${targets[r % targets.length]!.url}/bsmc/rest/events/webhook`, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": `kept-${r}` }, body: JSON.stringify(events) }).catch(() => null);
      if (response?.status === 202) break;
      expect(attempt).toBeLessThan(100);
      await Bun.sleep(50);
    }
  }
  const total = requests * perRequest;
  // An ack means committed on a majority, not applied everywhere: the node asked may lag by an entry.
  await group.waitForCaughtUp();
  const status = (await (await fetch(`${group.running()[0]!.url}/api/v1/status`)).json()) as { raft: { snapshotIndex?: number }; config: { outbox: Array<{ backlog: number }> } };
  expect(status.config.outbox[0]!.backlog).toBe(total);
  // Each node counts the listener requests it took into entries; none is left in flight or waiting.
  const accepts = await Promise.all(group.running().map(async (n) => ((await (await fetch(`${n.url}/api/v1/status`)).json()) as { accept: { requests: number; entries: number; inFlightEvents: number; waitingRequests: number; waitingBytes: number } }).accept));
  expect(accepts.reduce((sum, a) => sum + a.requests, 0)).toBeGreaterThanOrEqual(requests);
  expect(accepts.map((a) => [a.inFlightEvents, a.waitingRequests, a.waitingBytes])).toEqual(accepts.map(() => [0, 0, 0]));
  // Every node at once: each boots from its file alone, reading the kept entries back.
  for (const node of group.running()) await group.kill(node.id, "SIGKILL");
  // The file shows the design: compacted past entries that still hold events, none moved into rows.
  const database = await openDatabase(group.node("n1").dataDir);
  const { persisted } = await new LibsqlLogStore(database).load();
  const count = async (sql: string, args: number[] = []) => Number((await database.client.execute({ sql, args })).rows[0]!["n"]);
  const compactedThrough = persisted.snapshot?.meta.index ?? 0;
  const kept = await count("SELECT count(*) AS n FROM raft_entries WHERE idx <= ?", [compactedThrough]);
  const rows = await count("SELECT count(*) AS n FROM outbox_events");
  const runsInKept = await count("SELECT count(*) AS n FROM outbox_runs WHERE log_index <= ?", [compactedThrough]);
  database.close();
  expect({ compacted: compactedThrough > 200, kept: kept > 100, runsInKept: runsInKept > 100, rows }).toEqual({ compacted: true, kept: true, runsInKept: true, rows: 0 });
  for (const node of ["n1", "n2", "n3"]) await group.restart(node);
  await group.waitForLeader();
  await fetch(`${simUrl}/omi-sim/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode: "ok" }) });
  let stats = { events: 0, eventsDelivered: 0 };
  for (let i = 0; i < 600 && stats.events < total; i++) {
    stats = (await (await fetch(`${simUrl}/omi-sim/stats`)).json()) as typeof stats;
    await Bun.sleep(50);
  }
  expect(stats.events).toBe(total);
  expect(stats.eventsDelivered - total).toBeLessThanOrEqual(forwardingLimits.batchEventsMax);
}, 120_000);

test("the package's disk budget: with OMi down, status alarms near it and new requests are refused (503) past it; once OMi is back the backlog drains and every accepted event arrives", async () => {
  const simUrl = await startSim();
  await fetch(`${simUrl}/omi-sim/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode: "down" }) });
  cluster = await startCluster({ size: 3, extraArgs: ["--omi-url", simUrl] });
  const group = cluster;
  await deployListener(group, { outboxBytesMax: 1024 * 1024 });
  const url = group.running()[0]!.url;
  const outbox = async () => ((await (await fetch(`${url}/api/v1/status`)).json()) as { config: { outbox: Array<{ backlog: number; backlogBytes: number; budgetBytes: number; alarm: string | null }> } }).config.outbox[0]!;
  const accepted: string[] = [];
  let refused: { status: number; message: string } | null = null;
  let alarmSeen: string | null = null;
  // About 1.2 KB per event, 50 per request: the 1 MiB budget fills within ~18 requests (bounded at 100).
  for (let request = 0; request < 100 && refused === null; request++) {
    const events = Array.from({ length: 50 }, (_, i) => ({ title: `budget ${request}/${i}`, omi_event_key: `b:${request}:${i}`, description: "d".repeat(1_100) }));
    const response = await fetch(`${url}/bsmc/rest/events/webhook`, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": `budget-${request}` }, body: JSON.stringify(events) });
    const body = (await response.json()) as { ids?: string[]; error?: { message: string } };
    if (response.status === 202) accepted.push(...body.ids!);
    else refused = { status: response.status, message: body.error?.message ?? "" };
    alarmSeen ??= (await outbox()).alarm;
  }
  expect(refused?.status).toBe(503);
  expect(refused?.message).toContain("outbox full");
  expect(alarmSeen).toContain("outboxBytesMax");
  const full = await outbox();
  expect(full.budgetBytes).toBe(1024 * 1024);
  expect(full.backlogBytes).toBeLessThanOrEqual(1024 * 1024);
  expect(full.backlog).toBe(accepted.length);
  await fetch(`${simUrl}/omi-sim/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode: "ok" }) });
  for (let i = 0; i < 200 && (await outbox()).backlog > 0; i++) await Bun.sleep(100);
  expect(await outbox()).toMatchObject({ backlog: 0, backlogBytes: 0, alarm: null });
  const stats = (await (await fetch(`${simUrl}/omi-sim/stats`)).json()) as { events: number };
  expect(stats.events).toBe(accepted.length);
  // Room again: the refused request goes through now.
  const retry = await fetch(`${url}/bsmc/rest/events/webhook`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "after the outage" }) });
  expect(retry.status).toBe(202);
}, 60_000);

test("a package removed by a new deployment while OMi is down keeps its holder until its backlog is forwarded, then is released: acknowledged events are not stranded", async () => {
  const simUrl = await startSim();
  const fault = (mode: string) => fetch(`${simUrl}/omi-sim/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode }) });
  await fault("down");
  cluster = await startCluster({ size: 3, extraArgs: ["--omi-url", simUrl] });
  const group = cluster;
  await deployListener(group);
  const url = group.running()[0]!.url;
  const accepted: string[] = [];
  for (let request = 0; request < 10; request++) {
    const events = Array.from({ length: 30 }, (_, i) => ({ title: `removed ${request}/${i}`, omi_event_key: `rm:${request}:${i}` }));
    const response = await fetch(`${url}/bsmc/rest/events/webhook`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(events) });
    expect(response.status).toBe(202);
    accepted.push(...((await response.json()) as { ids: string[] }).ids);
  }
  // The next deployment has another package only; the listener path of the old one is gone.
  const leader = await group.waitForLeader();
  const model = {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: group.running().map((n) => ({ id: n.id, fqdn: `127.0.0.1:${n.port}` })) },
    policies: [{ name: "other", type: "event-listener", path: "other", inputFormat: "json" }],
    packages: [{ name: "other-ha", policies: ["other"], components: ["events"] }],
    aspects: [{ name: "asp", ciType: "Running Software", packages: ["other-ha"] }],
    templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
  };
  expect((await fetch(`${leader.url}/api/v1/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(model) })).status).toBe(200);
  expect((await fetch(`${leader.url}/api/v1/config/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ template: "tpl" }) })).status).toBe(201);
  // Once this node has applied the new deployment, the old listener path is gone (before that, an
  // event would be refused by the state machine with 409: the package is not deployed any more).
  const deployedVersion = async () => ((await (await fetch(`${url}/api/v1/status`)).json()) as { config: { deployedVersion: number | null } }).config.deployedVersion;
  for (let i = 0; i < 500 && (await deployedVersion()) !== 2; i++) await Bun.sleep(20);
  expect(await deployedVersion()).toBe(2);
  expect((await fetch(`${url}/bsmc/rest/events/webhook`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(404);
  type Status = { packages: Array<{ name: string; node: string | null; draining?: boolean }>; config: { outbox: Array<{ package: string; backlog: number }> } };
  const status = async () => (await (await fetch(`${url}/api/v1/status`)).json()) as Status;
  let draining: Status["packages"][number] | undefined;
  for (let i = 0; i < 100 && draining?.node == null; i++) {
    draining = (await status()).packages.find((p) => p.name === "events-ha");
    if (draining?.node == null) await Bun.sleep(50);
  }
  expect(draining).toMatchObject({ name: "events-ha", draining: true });
  expect(draining?.node).not.toBeNull();
  await fault("ok");
  for (let i = 0; i < 200 && ((await status()).config.outbox.find((o) => o.package === "events-ha")?.backlog ?? 0) > 0; i++) await Bun.sleep(100);
  const stats = (await (await fetch(`${simUrl}/omi-sim/stats`)).json()) as { events: number };
  expect(stats.events).toBe(accepted.length);
  // Drained: the removed package is released and leaves the status (the new one is held meanwhile).
  const names = async () => (await status()).packages.map((p) => p.name).join(",");
  for (let i = 0; i < 100 && (await names()) !== "other-ha"; i++) await Bun.sleep(50);
  expect(await names()).toBe("other-ha");
}, 60_000);
