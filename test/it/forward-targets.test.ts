/**
 * Forwarding targets end to end, in separate processes (3 nodes): a package with
 * `forward: {type: websocket}` and a consumer (a real WebSocket client here) that follows
 * `not-holder` answers and acks every batch while the holder is killed with -9 midway: it resumes
 * on the new holder from its last acked seq and ends with every event, in order, duplicates
 * bounded by the batches that can be in flight. And a package with a webhook target, whose
 * receiver (a Bun.serve here) fails its first POSTs: every event arrives, with the configured
 * headers and the Authorization value from the nodes' environment.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import type { Server } from "bun";
import { holderOf, waitForHolder } from "../support/ha-packages.ts";
import { startCluster, type Cluster } from "../support/cluster.ts";
import { bunPath, cleanupAll } from "../support/node-process.ts";
import { forwardTargetLimits, forwardingLimits } from "../../server/constants.ts";

let cluster: Cluster | null = null;
let receiver: Server<unknown> | null = null;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
  receiver?.stop(true);
  receiver = null;
});
afterAll(cleanupAll);

const total = 2_000;
const perRequest = 100;

interface RunnerStatus {
  readonly package: string;
  readonly forwarding: { readonly target: { readonly type: string; readonly consumerConnected?: boolean } } | null;
}

async function statusOf(url: string): Promise<{ packages?: Array<{ name: string; activeHere: boolean }>; runners?: RunnerStatus[] } | null> {
  const response = await fetch(`${url}/api/v1/status`, { signal: AbortSignal.timeout(1_000) }).catch(() => null);
  return ((await response?.json().catch(() => null)) ?? null) as never;
}

async function deploy(group: Cluster, pkg: string, forward: unknown): Promise<void> {
  const leader = await group.waitForLeader();
  const model = {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: group.running().map((n) => ({ id: n.id, fqdn: `127.0.0.1:${n.port}` })) },
    policies: [{ name: "in", type: "event-listener", path: "in", inputFormat: "json", unmatched: "send" }],
    packages: [{ name: pkg, policies: ["in"], components: ["events"], forward }],
    aspects: [{ name: "asp", ciType: "Running Software", packages: [pkg] }],
    templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
  };
  const put = await fetch(`${leader.url}/api/v1/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(model) });
  expect(put.status).toBe(200);
  expect((await fetch(`${leader.url}/api/v1/config/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ template: "tpl" }) })).status).toBe(201);
  await waitForHolder(group, pkg);
}

/**
 * Sends `total` events in order, 100 per request, each to a random running node; returns every
 * accepted id. `beforeRequest(sent)` may hold the stream (to act at a known point).
 */
async function sendEvents(group: Cluster, beforeRequest: (sent: number) => Promise<void>): Promise<string[]> {
  const ids: string[] = [];
  for (let b = 0; b < total / perRequest; b++) {
    await beforeRequest(b * perRequest);
    const events = Array.from({ length: perRequest }, (_, i) => ({ title: `e${b * perRequest + i}`, severity: "major", source_event_id: `e${b * perRequest + i}` }));
    // A request that fails (its node died, an election) is re-sent; the Idempotency-Key makes that safe.
    for (let attempt = 0; ; attempt++) {
      const targets = group.running();
      const target = targets[Math.floor(Math.random() * targets.length)]!;
      const response = await fetch(`${target.url}/bsmc/rest/events/in`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": `b${b}` },
        body: JSON.stringify(events),
        signal: AbortSignal.timeout(10_000),
      }).catch(() => null);
      if (response?.status === 202) {
        ids.push(...((await response.json()) as { ids: string[] }).ids);
        break;
      }
      expect(attempt).toBeLessThan(200);
      await Bun.sleep(50);
    }
  }
  return ids;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- protocol messages are read loosely */

/**
 * A WebSocket consumer as a client would write one: connect anywhere, follow not-holder to the
 * holder's address, subscribe after its last acked seq, ack each batch as it arrives, reconnect
 * (with a short pause) whenever the socket closes.
 */
class TestConsumer {
  readonly received: Array<{ seq: number; id: string; title: string }> = [];
  lastAcked = 0;
  /** Per connection that got events: the `after` it subscribed with and the first seq it was sent. */
  readonly resumes: Array<{ after: number; first: number }> = [];
  connections = 0;
  notHolders = 0;
  private next: string | null = null;
  private stopped = false;

  constructor(
    private readonly pkg: string,
    private readonly candidates: () => string[],
  ) {}

  /** Runs until stop(); every step bounded by a connect timeout or a socket close. */
  async run(): Promise<void> {
    while (!this.stopped) {
      const nodes = this.candidates();
      const address = this.next ?? nodes[Math.floor(Math.random() * nodes.length)]!;
      this.next = null;
      await this.session(address);
      if (!this.stopped) await Bun.sleep(100);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private session(address: string): Promise<void> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://${address}/ws/forward/${this.pkg}`);
      const timer = setTimeout(() => ws.close(), 5_000);
      const poll = setInterval(() => this.stopped && ws.close(), 50);
      let after: number | null = null;
      ws.onopen = () => {
        clearTimeout(timer);
        this.connections++;
        after = this.lastAcked;
        ws.send(JSON.stringify({ type: "subscribe", v: 1, after }));
      };
      ws.onmessage = (event) => {
        const message = JSON.parse(String(event.data)) as any;
        if (message.type === "not-holder") {
          this.notHolders++;
          this.next = message.address;
        } else if (message.type === "batch") {
          if (after !== null) this.resumes.push({ after, first: message.first });
          after = null;
          for (const e of message.events) this.received.push({ seq: e.seq, id: e.id, title: e.event.title });
          ws.send(JSON.stringify({ type: "ack", v: 1, through: message.last }));
          this.lastAcked = Math.max(this.lastAcked, message.last);
        }
      };
      ws.onclose = () => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve();
      };
    });
  }
}

test("WebSocket consumer: 2,000 events, the holder killed -9 midway; the consumer follows not-holder, resumes from its last ack: none lost, order kept", async () => {
  cluster = await startCluster({ size: 3 });
  const group = cluster;
  await deploy(group, "ws-ha", { type: "websocket" });
  const consumer = new TestConsumer("ws-ha", () => group.running().map((n) => `127.0.0.1:${n.port}`));
  const consuming = consumer.run();
  let killed: string | null = null;
  const killHolder = async (): Promise<void> => {
    // Midway: the consumer has the first half; the second half goes through the failover.
    for (let i = 0; i < 500 && consumer.received.length < total / 2; i++) await Bun.sleep(20);
    const holder = await holderOf(group, "ws-ha");
    const status = holder === null ? null : await statusOf(group.node(holder).url);
    // Status names the target and shows the consumer.
    expect(status?.runners?.find((r) => r.package === "ws-ha")?.forwarding?.target).toMatchObject({ type: "websocket", consumerConnected: true });
    killed = holder;
    if (holder !== null) await group.kill(holder, "SIGKILL");
  };
  const ids = await sendEvents(group, async (sent) => {
    if (sent === total / 2) await killHolder();
    // Keep the consumer busy across the kill: the stream goes on while the group fails over.
    if (sent > total / 2 && sent <= total / 2 + 300) await Bun.sleep(100);
  });
  for (let i = 0; i < 750 && new Set(consumer.received.map((e) => e.id)).size < total; i++) await Bun.sleep(20);
  consumer.stop();
  await consuming;
  const distinct = new Set(consumer.received.map((e) => e.id));
  const duplicates = consumer.received.length - distinct.size;
  console.log(`consumer: ${distinct.size} distinct of ${total}, ${duplicates} duplicates, ${consumer.connections} connections, ${consumer.notHolders} not-holder answers; killed ${killed}`);
  expect(killed).not.toBeNull();
  expect(ids).toHaveLength(total);
  expect([...distinct].sort()).toEqual([...new Set(ids)].sort());
  // At most the batches that can be in flight un-acked come twice.
  expect(duplicates).toBeLessThanOrEqual(forwardTargetLimits.consumerBatchesInFlightMax * forwardingLimits.batchEventsMax);
  // Order kept: first sightings in sequence order, which is the order the events were sent in.
  const firsts = consumer.received.filter((e, i, all) => all.findIndex((f) => f.id === e.id) === i);
  expect(firsts.map((e) => e.seq)).toEqual([...firsts.map((e) => e.seq)].sort((a, b) => a - b));
  expect(firsts.map((e) => Number(e.title.slice(1)))).toEqual(Array.from({ length: total }, (_, i) => i));
  // Every connection, the one after the failover included, went on right after the consumer's last ack.
  expect(consumer.resumes.length).toBeGreaterThanOrEqual(2);
  for (const { after, first } of consumer.resumes) expect(first).toBe(after + 1);
}, 90_000);

test("webhook target: 2,000 events, the receiver failing its first POSTs: all arrive, in order, with the configured headers and the Authorization from the environment", async () => {
  const seen: Array<{ ids: string[]; seqs: number[]; authorization: string | null; source: string | null }> = [];
  let posts = 0;
  receiver = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (request) => {
      posts++;
      if (posts <= 2) return new Response("warming up", { status: 503 });
      const body = (await request.json()) as { package: string; events: Array<{ id: string; seq: number }> };
      seen.push({ ids: body.events.map((e) => e.id), seqs: body.events.map((e) => e.seq), authorization: request.headers.get("authorization"), source: request.headers.get("x-source") });
      return new Response(null, { status: 204 });
    },
  });
  // The secret is in every node's environment, never in the replicated model. (Bun.spawn passes
  // the environment the test process started with, so the variable goes on the command line.)
  cluster = await startCluster({ size: 3, command: ["env", "OPSCONN_IT_WEBHOOK_TOKEN=Bearer it-secret", bunPath, "server/main.ts"] });
  const group = cluster;
  await deploy(group, "hook-ha", { type: "webhook", url: `http://127.0.0.1:${receiver.port}/events`, headers: { "X-Source": "opsconn-it" }, authorizationEnv: "OPSCONN_IT_WEBHOOK_TOKEN" });
  const ids = await sendEvents(group, async () => {});
  const arrived = () => new Set(seen.flatMap((s) => s.ids)).size;
  for (let i = 0; i < 750 && arrived() < total; i++) await Bun.sleep(20);
  console.log(`webhook: ${arrived()} distinct of ${total} in ${seen.length} delivered POSTs (${posts} in all)`);
  expect([...new Set(seen.flatMap((s) => s.ids))].sort()).toEqual([...ids].sort());
  expect(posts).toBeGreaterThan(2);
  expect(seen.every((s) => s.authorization === "Bearer it-secret" && s.source === "opsconn-it")).toBe(true);
  const seqs = seen.flatMap((s) => s.seqs);
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  const holder = await holderOf(group, "hook-ha");
  const status = holder === null ? null : await statusOf(group.node(holder).url);
  expect(status?.runners?.find((r) => r.package === "hook-ha")?.forwarding?.target).toEqual<unknown>({ type: "webhook", url: `http://127.0.0.1:${receiver.port}/events` });
}, 90_000);
