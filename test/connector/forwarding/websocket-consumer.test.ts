/**
 * The WebSocket consumer end to end in one process: the real route (server/http/routes/ws-forward.ts)
 * on a Bun.serve at 127.0.0.1 with the node's WebSocket handler, the registry, the target and the
 * forwarder over a real outbox, with a fake group that applies cursor moves at once.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Hono } from "hono";
import type { Server } from "bun";
import { EventForwarder } from "../../../server/connector/forwarding/event-forwarder.ts";
import { ConsumerRegistry, type ConsumerLocation } from "../../../server/connector/forwarding/consumer-registry.ts";
import { WebSocketTarget } from "../../../server/connector/forwarding/websocket-target.ts";
import { wsForwardRoutes } from "../../../server/http/routes/ws-forward.ts";
import { onError } from "../../../server/http/errors.ts";
import { peerWebSocket } from "../../../server/transport/peer-route.ts";
import { Outbox } from "../../../server/state/outbox.ts";
import { decodeCommand } from "../../../server/state/command-codec.ts";
import { emptyOprEvent } from "../../../server/connector/events/event-record.ts";
import { Logger } from "../../../server/log/logger.ts";

const log = new Logger({ node: "n1", level: "error", pretty: false, sink: { write: () => {} } });

/* eslint-disable @typescript-eslint/no-explicit-any -- messages are read loosely */
type Message = any;

interface Setup {
  readonly outbox: Outbox;
  readonly forwarder: EventForwarder;
  readonly registry: ConsumerRegistry;
  readonly url: string;
  readonly server: Server<unknown>;
  cursor(): number;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function setup(options: { events: number; ackTimeoutMs?: number; subscribeTimeoutMs?: number; serve?: boolean }): Setup {
  const outbox = new Outbox();
  const context = { holders: new Map([["pkg", { node: "n1", epoch: 1 }]]), deployed: new Set(["pkg"]) };
  for (let from = 0, index = 1; from < options.events; from += 1000, index++) {
    const n = Math.min(1000, options.events - from);
    outbox.apply({ op: "accept", package: "pkg", atMs: 1, requestKey: null, eventKeys: Array(n).fill(null), events: Array.from({ length: n }, (_, i) => ({ ...emptyOprEvent(), title: `event ${from + i + 1}` })) }, index, context);
  }
  let index = 1000;
  const group = {
    propose: async (data: Uint8Array) => {
      const command = decodeCommand(data);
      if (command.kind !== "outbox") throw new Error(`unexpected command ${command.kind}`);
      index++;
      return { index, result: outbox.apply(command.op, index, context) };
    },
    waitApplied: async () => {},
  };
  const locate = (name: string): ConsumerLocation => (name === "pkg" ? { kind: "elsewhere", holder: "n2", address: "127.0.0.1:7002" } : { kind: "unavailable", reason: `no deployed package '${name}'` });
  const registry = new ConsumerRegistry({ locate, ...(options.subscribeTimeoutMs === undefined ? {} : { subscribeTimeoutMs: options.subscribeTimeoutMs }) });
  const cursor = () => outbox.status().find((s) => s.package === "pkg")?.cursor ?? 0;
  const target = new WebSocketTarget({ packageName: "pkg", epoch: 1, cursor, registry, log, ...(options.ackTimeoutMs === undefined ? {} : { ackTimeoutMs: options.ackTimeoutMs }) });
  const forwarder = new EventForwarder({ packageName: "pkg", epoch: 1, mayAct: () => true, group: group as never, state: { outbox } as never, target, log, batchEventsMax: 500 });
  const app = new Hono();
  app.route("/", wsForwardRoutes(registry));
  app.onError(onError(log));
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket: peerWebSocket });
  cleanups.push(() => {
    forwarder.stop();
    server.stop(true);
  });
  return { outbox, forwarder, registry, server, url: `ws://127.0.0.1:${server.port}/ws/forward/pkg`, cursor };
}

/** A test consumer: a real WebSocket client that queues what it receives. */
class Client {
  readonly messages: Message[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.onmessage = (event) => {
      this.messages.push(JSON.parse(String(event.data)));
      this.notify();
    };
    ws.onclose = (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.notify();
    };
  }

  static async open(url: string): Promise<Client> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    return new Client(ws);
  }

  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** The first queued message of `type` (removed from the queue), waiting up to `timeoutMs`. */
  async next(type: string, timeoutMs = 3_000): Promise<Message> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const at = this.messages.findIndex((m) => m.type === type);
      if (at >= 0) return this.messages.splice(at, 1)[0];
      if (performance.now() > deadline) throw new Error(`no ${type} message within ${timeoutMs} ms (have ${JSON.stringify(this.messages.map((m) => m.type))}, closed ${JSON.stringify(this.closed)})`);
      await this.wait(deadline - performance.now());
    }
  }

  async close(timeoutMs = 3_000): Promise<{ code: number; reason: string }> {
    const deadline = performance.now() + timeoutMs;
    while (this.closed === null) {
      if (performance.now() > deadline) throw new Error("the server did not close the socket");
      await this.wait(deadline - performance.now());
    }
    return this.closed;
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, ms));
      this.waiters.push(() => (clearTimeout(timer), resolve()));
    });
  }

  private notify(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

describe("a subscribed consumer", () => {
  test("gets every event once, in order, in batches; each ack moves the cursor through Raft and is answered acked once committed", async () => {
    const s = setup({ events: 1_200 });
    s.forwarder.start();
    const client = await Client.open(s.url);
    client.send({ type: "subscribe", v: 1, after: 0 });
    expect(await client.next("subscribed")).toEqual({ type: "subscribed", v: 1, package: "pkg", epoch: 1, cursor: 0 });
    const seen: number[] = [];
    const ids = new Set<string>();
    while (seen.length < 1_200) {
      const batch = await client.next("batch");
      expect(batch.first).toBe(batch.events[0].seq);
      expect(batch.last).toBe(batch.events.at(-1).seq);
      for (const e of batch.events) {
        seen.push(e.seq);
        ids.add(e.id);
        expect(e.event.title).toBe(`event ${e.seq}`);
      }
      client.send({ type: "ack", v: 1, through: batch.last });
    }
    expect(seen).toEqual(Array.from({ length: 1_200 }, (_, i) => i + 1));
    expect(ids.size).toBe(1_200);
    let acked = 0;
    while (acked < 1_200) acked = (await client.next("acked")).through;
    expect(acked).toBe(1_200);
    expect(s.cursor()).toBe(1_200);
    const status = s.forwarder.status();
    expect(status.target).toMatchObject({ type: "websocket", consumerConnected: true, consumer: { sentThrough: 1_200, ackedThrough: 1_200, batchesInFlight: 0 } });
    expect(status.delivered).toBe(1_200);
  });

  test("resumes after its own `after`: nothing at or below it is sent, and the cursor moves over it", async () => {
    const s = setup({ events: 1_000 });
    s.forwarder.start();
    const client = await Client.open(s.url);
    client.send({ type: "subscribe", v: 1, after: 600 });
    await client.next("subscribed");
    const batch = await client.next("batch");
    expect([batch.first, batch.last]).toEqual([601, 1_000]);
    client.send({ type: "ack", v: 1, through: 1_000 });
    // The first 500 (all at or below 600) needed no send: their cursor move comes first.
    expect((await client.next("acked")).through).toBe(500);
    expect((await client.next("acked")).through).toBe(1_000);
    expect(s.outbox.status()[0]).toMatchObject({ cursor: 1_000, backlog: 0 });
  });

  test("no consumer: retry with 'no consumer subscribed' in status, events wait; a subscribe wakes the forwarder at once", async () => {
    const s = setup({ events: 100 });
    s.forwarder.start();
    await Bun.sleep(1_500); // the backoff has grown past a second
    const status = s.forwarder.status();
    expect(status.lastError).toBe("no consumer subscribed");
    expect(status.target).toEqual({ type: "websocket", consumerConnected: false, consumer: null });
    expect(s.outbox.status()[0]?.backlog).toBe(100);
    const client = await Client.open(s.url);
    const started = performance.now();
    client.send({ type: "subscribe", v: 1, after: 0 });
    await client.next("batch");
    expect(performance.now() - started).toBeLessThan(300);
  });

  test("at most 4 batches are in flight un-acked; a batch not acked in time goes again, on the same socket", async () => {
    const s = setup({ events: 3_000, ackTimeoutMs: 400 });
    s.forwarder.start();
    const client = await Client.open(s.url);
    client.send({ type: "subscribe", v: 1, after: 0 });
    await client.next("subscribed");
    await Bun.sleep(300);
    const first = client.messages.splice(0).filter((m) => m.type === "batch");
    expect(first.map((b) => [b.batch, b.first, b.last])).toEqual([
      [1, 1, 500],
      [2, 501, 1_000],
      [3, 1_001, 1_500],
      [4, 1_501, 2_000],
    ]);
    const again = await client.next("batch", 3_000);
    expect([again.batch, again.first]).toEqual([5, 1]);
    expect(s.forwarder.status().lastError).toContain("did not acknowledge batch 1 within 400 ms");
    // From here on it acks; everything arrives.
    let last = again.last;
    client.send({ type: "ack", v: 1, through: last });
    while (last < 3_000) {
      const batch = await client.next("batch");
      last = batch.last;
      client.send({ type: "ack", v: 1, through: last });
    }
    await until(() => s.cursor() === 3_000);
  });

  test("a second subscribe replaces the first consumer (closed with 4409), and the new one gets the un-acked batch", async () => {
    const s = setup({ events: 300 });
    s.forwarder.start();
    const a = await Client.open(s.url);
    a.send({ type: "subscribe", v: 1, after: 0 });
    expect((await a.next("batch")).last).toBe(300);
    const b = await Client.open(s.url);
    b.send({ type: "subscribe", v: 1, after: 0 });
    expect(await a.close()).toMatchObject({ code: 4409 });
    expect((await a.close()).reason).toContain("replaced by a newer consumer");
    await b.next("subscribed");
    const batch = await b.next("batch");
    expect([batch.first, batch.last]).toEqual([1, 300]);
    b.send({ type: "ack", v: 1, through: 300 });
    await until(() => s.cursor() === 300);
  });

  test("the forwarder stops (failover, redeploy): the consumer is closed with 4410 and told to reconnect", async () => {
    const s = setup({ events: 10 });
    s.forwarder.start();
    const client = await Client.open(s.url);
    client.send({ type: "subscribe", v: 1, after: 0 });
    await client.next("batch");
    s.forwarder.stop();
    const closed = await client.close();
    expect(closed.code).toBe(4410);
    expect(closed.reason).toContain("reconnect");
    expect(s.registry.endpoint("pkg")).toBeNull();
  });
});

describe("misbehaving consumers are told and closed with 4400", () => {
  const cases: Array<[string, unknown, string]> = [
    ["bad JSON", "{nope", "not valid JSON"],
    ["an ack before subscribe", { type: "ack", v: 1, through: 1 }, "ack before subscribe"],
    ["an unknown type", { type: "hello", v: 1 }, "type must be subscribe or ack"],
  ];
  test.each(cases)("%s", async (_name, message, error) => {
    const s = setup({ events: 10 });
    s.forwarder.start();
    const client = await Client.open(s.url);
    client.send(message);
    expect((await client.next("error")).message).toContain(error);
    expect((await client.close()).code).toBe(4400);
  });

  test("a binary message", async () => {
    const s = setup({ events: 10 });
    const client = await Client.open(s.url);
    client.ws.send(new Uint8Array([1, 2, 3]));
    expect((await client.next("error")).message).toContain("binary message");
    expect((await client.close()).code).toBe(4400);
  });

  test("an ack beyond what was sent; the batch then goes to the next consumer, nothing lost", async () => {
    const s = setup({ events: 50 });
    s.forwarder.start();
    const bad = await Client.open(s.url);
    bad.send({ type: "subscribe", v: 1, after: 0 });
    expect((await bad.next("batch")).last).toBe(50);
    bad.send({ type: "ack", v: 1, through: 51 });
    expect((await bad.next("error")).message).toBe("ack through 51 is beyond the last event sent (50)");
    expect((await bad.close()).code).toBe(4400);
    expect(s.cursor()).toBe(0);
    const good = await Client.open(s.url);
    good.send({ type: "subscribe", v: 1, after: 0 });
    const batch = await good.next("batch");
    expect([batch.first, batch.last]).toEqual([1, 50]);
  });

  test("a subscribe after the last accepted event (it would count events never sent as delivered)", async () => {
    const s = setup({ events: 10 });
    s.forwarder.start();
    const client = await Client.open(s.url);
    client.send({ type: "subscribe", v: 1, after: 11 });
    expect((await client.next("error")).message).toBe("after 11 is beyond the last event accepted for package pkg (10)");
    expect((await client.close()).code).toBe(4400);
    expect(s.cursor()).toBe(0);
  });

  test("a second subscribe on one connection", async () => {
    const s = setup({ events: 1 });
    s.forwarder.start();
    const client = await Client.open(s.url);
    client.send({ type: "subscribe", v: 1, after: 0 });
    await client.next("subscribed");
    client.send({ type: "subscribe", v: 1, after: 0 });
    expect((await client.next("error")).message).toContain("already subscribed");
    expect((await client.close()).code).toBe(4400);
  });
});

describe("a node that does not serve the package", () => {
  test("not the holder: not-holder names the holder and its address, then 4421", async () => {
    const s = setup({ events: 1 }); // the forwarder never starts: nothing registered here
    const client = await Client.open(s.url);
    client.send({ type: "subscribe", v: 1, after: 0 });
    expect(await client.next("not-holder")).toEqual({ type: "not-holder", v: 1, holder: "n2", address: "127.0.0.1:7002" });
    expect((await client.close()).code).toBe(4421);
  });

  test("an unknown package: an error naming it, then 4404", async () => {
    const s = setup({ events: 1 });
    const client = await Client.open(s.url.replace("/pkg", "/ghost"));
    client.send({ type: "subscribe", v: 1, after: 0 });
    expect((await client.next("error")).message).toBe("no deployed package 'ghost'");
    expect((await client.close()).code).toBe(4404);
  });

  test("a socket that never subscribes is closed (4408)", async () => {
    const s = setup({ events: 1, subscribeTimeoutMs: 200 });
    const client = await Client.open(s.url);
    expect((await client.close()).code).toBe(4408);
    await until(() => s.registry.connections === 0);
  });

  test("plain HTTP: 426 naming the endpoint; a bad package name: 400", async () => {
    const s = setup({ events: 1 });
    const http = `http://127.0.0.1:${s.server.port}/ws/forward`;
    const plain = await fetch(`${http}/pkg`);
    expect(plain.status).toBe(426);
    expect(((await plain.json()) as { error: { message: string } }).error.message).toContain("WebSocket endpoint");
    const bad = await fetch(`${http}/-bad`, { headers: { upgrade: "websocket" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("package: '-bad' is not a package name");
  });
});
