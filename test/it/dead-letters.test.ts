/**
 * Dead letters end to end, in separate processes: 3 nodes and, in this process, a webhook receiver
 * that refuses (400) any list holding an event titled "poison". The holder isolates the 3 poison
 * events among 300 into dead letters while every other event arrives once, in order; every node
 * (one of them restarted from its files) shows them in status and lists them; once the receiver is
 * fixed, a requeue sends them again as new events (new seqs and ids) and the dead letters empty.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import type { Server } from "bun";
import { waitForHolder } from "../support/ha-packages.ts";
import { startCluster, type Cluster } from "../support/cluster.ts";
import { cleanupAll } from "../support/node-process.ts";

let cluster: Cluster | null = null;
let receiver: Server<unknown> | null = null;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = null;
  receiver?.stop(true);
  receiver = null;
});
afterAll(cleanupAll);

const total = 300;
const perRequest = 100;
const poison = new Set([7, 150, 299]);
const titleOf = (n: number) => (poison.has(n) ? "poison" : `e${n}`);

interface OutboxStatus {
  readonly package: string;
  readonly backlog: number;
  readonly deadLetters: number;
  readonly deadLettersDropped: number;
  readonly lastDeadLetter: { readonly seq: number; readonly reason: { readonly status: number; readonly message: string } } | null;
}

async function statusOf(url: string): Promise<{ packages?: Array<{ name: string; activeHere: boolean }>; config?: { outbox: OutboxStatus[] } } | null> {
  const response = await fetch(`${url}/api/v1/status`, { signal: AbortSignal.timeout(1_000) }).catch(() => null);
  return ((await response?.json().catch(() => null)) ?? null) as never;
}

async function outboxOf(url: string): Promise<OutboxStatus | undefined> {
  return (await statusOf(url))?.config?.outbox.find((o) => o.package === "dl-ha");
}

/** Polls (bounded) until `check` holds; fails naming `what`. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await Bun.sleep(50);
  }
}

test("a webhook receiver refusing 3 poison events of 300 with 400: the rest arrive in order, the 3 become dead letters on every node, and after the fix a requeue delivers them as new events", async () => {
  let fixed = false;
  const arrived: Array<{ id: string; seq: number; title: string }> = [];
  receiver = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (request) => {
      const body = (await request.json()) as { events: Array<{ id: string; seq: number; event: { title: string } }> };
      if (!fixed && body.events.some((e) => e.event.title === "poison")) return new Response("an event titled poison is not acceptable", { status: 400 });
      arrived.push(...body.events.map((e) => ({ id: e.id, seq: e.seq, title: e.event.title })));
      return new Response(null, { status: 204 });
    },
  });
  cluster = await startCluster({ size: 3 });
  const group = cluster;
  const leader = await group.waitForLeader();
  const model = {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: group.running().map((n) => ({ id: n.id, fqdn: `127.0.0.1:${n.port}` })) },
    policies: [{ name: "in", type: "event-listener", path: "in", inputFormat: "json", unmatched: "send" }],
    packages: [{ name: "dl-ha", policies: ["in"], components: ["events"], forward: { type: "webhook", url: `http://127.0.0.1:${receiver.port}/events` } }],
    aspects: [{ name: "asp", ciType: "Running Software", packages: ["dl-ha"] }],
    templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
  };
  expect((await fetch(`${leader.url}/api/v1/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(model) })).status).toBe(200);
  expect((await fetch(`${leader.url}/api/v1/config/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ template: "tpl" }) })).status).toBe(201);
  const holder = await waitForHolder(group, "dl-ha");

  // In order, each request to another node.
  for (let r = 0; r < total / perRequest; r++) {
    const events = Array.from({ length: perRequest }, (_, i) => ({ title: titleOf(r * perRequest + i + 1), severity: "major" }));
    const node = group.running()[r % group.running().length]!;
    const response = await fetch(`${node.url}/bsmc/rest/events/in`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(events) });
    expect(response.status).toBe(202);
  }
  const others = Array.from({ length: total }, (_, i) => i + 1).filter((n) => !poison.has(n));
  await until("the 297 other events at the receiver", () => arrived.length >= others.length);
  expect(arrived.map((e) => e.title)).toEqual(others.map((n) => `e${n}`));
  expect(arrived.map((e) => e.seq)).toEqual(others);

  // Every node holds the dead letters in its replicated state and shows them in status.
  for (const node of group.running()) {
    // The last event reaches the receiver before the cursor move that follows it is applied here.
    await until(`3 dead letters and an empty backlog in ${node.id}'s status`, async () => {
      const outbox = await outboxOf(node.url);
      return outbox?.deadLetters === 3 && outbox.backlog === 0;
    });
    expect(await outboxOf(node.url)).toMatchObject({ backlog: 0, deadLetters: 3, deadLettersDropped: 0, lastDeadLetter: { seq: 299, reason: { status: 400, message: "HTTP 400: an event titled poison is not acceptable" } } });
  }
  // A follower restarted from its files still has them (flushed rows, or the log it replays). Not
  // the holder nor the leader: the requeue below should not wait for an election.
  const raftLeader = await group.waitForLeader();
  const follower = group.running().find((n) => n.id !== holder && n.id !== raftLeader.id)!;
  await group.kill(follower.id, "SIGTERM");
  await group.restart(follower.id);
  await until(`3 dead letters in restarted ${follower.id}'s status`, async () => (await outboxOf(follower.url))?.deadLetters === 3);
  const listed = (await (await fetch(`${follower.url}/api/v1/outbox/dl-ha/dead-letters`)).json()) as { deadLetters: Array<{ id: string; seq: number; event: { title: string }; reason: { status: number } }>; next: number | null };
  expect(listed.deadLetters.map((d) => [d.seq, d.event.title, d.reason.status])).toEqual([...poison].map((seq) => [seq, "poison", 400]));
  expect(listed.next).toBeNull();

  // The receiver is fixed: requeue them all (any node); they arrive as new events.
  fixed = true;
  const response = await fetch(`${follower.url}/api/v1/outbox/dl-ha/dead-letters/requeue`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ all: true }) });
  expect(response.status).toBe(200);
  const requeued = (await response.json()) as { requeued: Array<{ from: number; seq: number; id: string }>; note: string };
  expect(requeued.requeued.map((r) => [r.from, r.seq])).toEqual([[7, 301], [150, 302], [299, 303]]);
  expect(requeued.note).toContain("new seqs and ids");
  await until("the 3 requeued events at the receiver", () => arrived.length >= total);
  expect(arrived.slice(others.length)).toEqual(requeued.requeued.map((r) => ({ id: r.id, seq: r.seq, title: "poison" })));
  const oldIds = new Set(listed.deadLetters.map((d) => d.id));
  expect(requeued.requeued.some((r) => oldIds.has(r.id))).toBe(false);
  for (const node of group.running()) await until(`no dead letters left on ${node.id}`, async () => (await outboxOf(node.url))?.deadLetters === 0);
}, 90_000);
