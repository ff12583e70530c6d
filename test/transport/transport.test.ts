/**
 * @module Transport integration over real WebSockets on 127.0.0.1: two and three nodes exchange Raft
 * messages both ways, a wrong secret or an unauthenticated client is refused and delivers nothing,
 * a restarted peer (dialer or acceptor) reconnects and traffic resumes, the send queue stays bounded
 * while a peer is down, and app requests get replies or time out. Every server and transport is
 * stopped in afterEach; every wait is bounded.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Server } from "bun";
import { Hono } from "hono";
import { transportLimits } from "../../server/constants.ts";
import { Logger } from "../../server/log/logger.ts";
import type { Message, NodeId } from "../../server/raft/types.ts";
import { decodeFrame, encodeFrame, type Frame } from "../../server/transport/codec.ts";
import { DialerHandshake } from "../../server/transport/handshake.ts";
import { randomNonce, secretBytes } from "../../server/transport/auth.ts";
import { PEER_PATH } from "../../server/transport/peer-link.ts";
import { peerWebSocket, registerPeerRoute } from "../../server/transport/peer-route.ts";
import type { SendQueueLimits } from "../../server/transport/send-queue.ts";
import { Transport } from "../../server/transport/transport.ts";

// Generous: the CI box has two cores that other suites may be saturating; waits are bounded anyway.
setDefaultTimeout(30_000);

const secret = "test-cluster-secret-0123456789";

interface TestNode {
  readonly id: NodeId;
  readonly transport: Transport;
  readonly server: Server<unknown>;
  readonly address: string;
  readonly received: Message[];
  readonly logs: string[];
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  // Reverse order; bounded by the list length.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface NodeOptions {
  readonly secret?: string;
  readonly port?: number;
  readonly queue?: SendQueueLimits;
  readonly handshakeTimeoutMs?: number;
  readonly keepaliveIntervalMs?: number;
  readonly peerSilenceMsMax?: number;
}

function startNode(id: NodeId, options: NodeOptions = {}): TestNode {
  const logs: string[] = [];
  const log = new Logger({ node: id, level: "debug", pretty: false, sink: { write: (line) => void logs.push(line) } });
  const transport = new Transport({
    id,
    secret: options.secret ?? secret,
    log,
    backoff: { delayMinMs: 10, delayMaxMs: 100 },
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 2000,
    keepaliveIntervalMs: options.keepaliveIntervalMs ?? 1000,
    peerSilenceMsMax: options.peerSilenceMsMax ?? 10_000,
    ...(options.queue === undefined ? {} : { queue: options.queue }),
  });
  const app = new Hono();
  registerPeerRoute(app, transport);
  const server = Bun.serve({ hostname: "127.0.0.1", port: options.port ?? 0, fetch: app.fetch, websocket: peerWebSocket });
  const received: Message[] = [];
  transport.onMessages((messages) => void received.push(...messages));
  const node = { id, transport, server, address: `127.0.0.1:${server.port}`, received, logs };
  cleanups.push(() => stopNode(node));
  return node;
}

async function stopNode(node: TestNode): Promise<void> {
  node.transport.stop();
  await node.server.stop(true);
}

function wire(nodes: readonly TestNode[]): void {
  const peers = new Map(nodes.map((n) => [n.id, n.address]));
  for (const node of nodes) {
    node.transport.setPeers(peers);
    node.transport.start();
  }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

const heartbeat = (from: NodeId, to: NodeId, commit: number): Message => ({ type: "heartbeat", from, to, term: 1, commit, context: null });
const append = (from: NodeId, to: NodeId, index: number): Message => ({
  type: "app", from, to, term: 2, index, logTerm: 2, commit: index,
  entries: [{ term: 2, index: index + 1, type: "normal", data: new Uint8Array(64).fill(index & 0xff) }],
});

describe("transport over loopback", () => {
  test("two nodes exchange raft messages both ways, batched and in order", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    wire([a, b]);
    const toB = Array.from({ length: 500 }, (_, i) => append("a", "b", i));
    a.transport.send(toB);
    b.transport.send([heartbeat("b", "a", 7)]);
    await waitFor("both directions", () => b.received.length === 500 && a.received.length === 1);
    expect(b.received.map((m) => (m.type === "app" ? m.index : -1))).toEqual(toB.map((_, i) => i));
    expect(b.received[3]).toEqual(toB[3]!);
    expect(a.received).toEqual([heartbeat("b", "a", 7)]);
    expect(a.transport.stats().get("b")).toMatchObject({ connected: true, dropped: 0, queuedMessages: 0 });
    expect(b.transport.stats().get("a")?.lastContactMs).toBeNumber();
  });

  test("send() hands raft messages to the socket before it returns, one frame per call", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    wire([a, b]);
    await waitFor("link up", () => a.transport.stats().get("b")?.connected === true && b.transport.stats().get("a")?.connected === true);
    const before = a.transport.stats().get("b")!.framesSent;
    a.transport.send(Array.from({ length: 50 }, (_, i) => append("a", "b", i)));
    // Synchronously: a leader's fsync blocks the thread right after this call, and its appends
    // must already be on their way (Raft thesis §10.2.1), not waiting for a microtask.
    expect(a.transport.stats().get("b")!.framesSent).toBe(before + 1);
    expect(a.transport.stats().get("b")!.queuedMessages).toBe(0);
    await waitFor("delivered", () => b.received.length === 50);
  });

  test("three nodes: every pair talks over one link", async () => {
    const nodes = [startNode("n1"), startNode("n2"), startNode("n3")];
    wire(nodes);
    for (const from of nodes) {
      from.transport.send(nodes.filter((n) => n !== from).map((to) => heartbeat(from.id, to.id, 1)));
    }
    await waitFor("all heartbeats", () => nodes.every((n) => n.received.length === 2));
    for (const node of nodes) {
      expect(node.received.map((m) => m.from).sort()).toEqual(nodes.filter((n) => n !== node).map((n) => n.id));
      for (const stats of node.transport.stats().values()) expect(stats.connected).toBe(true);
    }
  });

  test("a dialer with the wrong secret is refused, logged at warn, and delivers nothing", async () => {
    const a = startNode("a", { secret: "not-the-cluster-secret-at-all" });
    const b = startNode("b");
    wire([a, b]);
    a.transport.send([heartbeat("a", "b", 1)]);
    await waitFor("refusal logged", () => b.logs.some((l) => l.includes("peer connection refused")));
    await Bun.sleep(100);
    expect(b.received).toEqual([]);
    expect(a.transport.stats().get("a")).toBeUndefined();
    expect(a.transport.stats().get("b")?.connected).toBe(false);
    const refusal = JSON.parse(b.logs.find((l) => l.includes("peer connection refused"))!) as { level: string; fields: Record<string, unknown> };
    expect(refusal.level).toBe("warn");
    expect(String(refusal.fields["remote"])).toBe("127.0.0.1");
    expect(String(refusal.fields["reason"])).toContain("failed to prove the cluster secret");
  });

  test("an unauthenticated client sending raft frames is closed with a reason; nothing is delivered", async () => {
    const b = startNode("b");
    wire([b]);
    b.transport.setPeers(new Map([["a", "127.0.0.1:1"]]));
    const ws = new WebSocket(`ws://${b.address}${PEER_PATH}`);
    ws.binaryType = "arraybuffer";
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
    ws.onopen = () => ws.send(encodeFrame({ type: "raft", messages: [heartbeat("a", "b", 1)] }));
    const event = await closed;
    expect(event.code).toBe(4001);
    expect(event.reason).toContain("expected hello, got raft");
    expect(b.received).toEqual([]);
  });

  test("an authenticated peer that spoofs another sender is disconnected; nothing is delivered", async () => {
    const b = startNode("b");
    wire([b]);
    b.transport.setPeers(new Map([["a", "127.0.0.1:1"]]));
    const client = rawAuthenticatedClient(b.address, "a", "b");
    await client.authenticated;
    client.send({ type: "raft", messages: [heartbeat("c", "b", 1)] });
    const event = await client.closed;
    expect(event.code).toBe(4003);
    expect(event.reason).toContain("raft message c→b on the a→b link");
    expect(b.received).toEqual([]);
  });

  test("a text message after authentication is a protocol violation", async () => {
    const b = startNode("b");
    b.transport.setPeers(new Map([["a", "127.0.0.1:1"]]));
    b.transport.start();
    const client = rawAuthenticatedClient(b.address, "a", "b");
    await client.authenticated;
    client.ws.send("hello?");
    expect((await client.closed).reason).toContain("text message on a binary link");
  });

  test("keepalives flow on an idle link, and a silent peer is disconnected", async () => {
    const b = startNode("b", { keepaliveIntervalMs: 20, peerSilenceMsMax: 400 });
    b.transport.setPeers(new Map([["a", "127.0.0.1:1"]]));
    b.transport.start();
    const client = rawAuthenticatedClient(b.address, "a", "b");
    const keepalives: Frame[] = [];
    await client.authenticated;
    client.ws.onmessage = (event) => void keepalives.push(decodeFrame(new Uint8Array(event.data as ArrayBuffer)));
    const event = await client.closed;
    expect(event.code).toBe(4007);
    expect(event.reason).toContain("nothing received for");
    expect(keepalives.length).toBeGreaterThanOrEqual(2);
    expect(keepalives[0]).toEqual({ type: "raft", messages: [] });
    expect(b.received).toEqual([]);
  });

  test("a client that never authenticates is closed after the handshake timeout", async () => {
    const b = startNode("b", { handshakeTimeoutMs: 100 });
    b.transport.start();
    const ws = new WebSocket(`ws://${b.address}${PEER_PATH}`);
    const event = await new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
    expect(event.code).toBe(4005);
    expect(event.reason).toContain("not authenticated within 100 ms");
  });

  test("a higher id dialing a lower one is refused (one link per pair, lower id dials)", async () => {
    const b = startNode("b");
    b.transport.setPeers(new Map([["c", "127.0.0.1:1"]]));
    b.transport.start();
    const client = rawAuthenticatedClient(b.address, "c", "b");
    await expect(client.authenticated).rejects.toThrow("b dials c, not the other way round");
    expect((await client.closed).code).toBe(4001);
  });

  test("a peer that is not a member is refused at hello", async () => {
    const b = startNode("b");
    wire([b]);
    const ws = new WebSocket(`ws://${b.address}${PEER_PATH}`);
    ws.binaryType = "arraybuffer";
    const frames: string[] = [];
    ws.onmessage = (e) => void frames.push(decodeFrame(new Uint8Array(e.data as ArrayBuffer)).type);
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
    ws.onopen = () => ws.send(encodeFrame({ type: "hello", from: "a", to: "b" }));
    const event = await closed;
    expect(frames).toEqual(["auth-fail"]);
    expect(event.reason).toContain("a is not a member known to b");
  });

  test("an acceptor restart: the dialer reconnects and traffic resumes", async () => {
    const a = startNode("a");
    let b = startNode("b");
    wire([a, b]);
    a.transport.send([heartbeat("a", "b", 1)]);
    await waitFor("first heartbeat", () => b.received.length === 1);
    const port = b.server.port;
    if (port === undefined) throw new Error("server has no port");
    await stopNode(b);
    await waitFor("link down", () => a.transport.stats().get("b")?.connected === false);
    a.transport.send([heartbeat("a", "b", 2)]); // queued while b is down
    b = startNode("b", { port });
    b.transport.setPeers(new Map([["a", a.address]]));
    b.transport.start();
    await waitFor("queued heartbeat after restart", () => b.received.length === 1);
    a.transport.send([heartbeat("a", "b", 3)]);
    b.transport.send([heartbeat("b", "a", 4)]);
    await waitFor("traffic both ways", () => b.received.length === 2 && a.received.length === 1);
    expect(b.received.map((m) => (m.type === "heartbeat" ? m.commit : 0))).toEqual([2, 3]);
    expect(a.transport.stats().get("b")?.reconnects).toBe(1);
  });

  test("a dialer restart replaces its old connection on the acceptor", async () => {
    let a = startNode("a");
    const b = startNode("b");
    wire([a, b]);
    b.transport.send([heartbeat("b", "a", 1)]);
    await waitFor("first heartbeat", () => a.received.length === 1);
    await stopNode(a);
    a = startNode("a");
    b.transport.setPeers(new Map([["a", a.address]]));
    a.transport.setPeers(new Map([["b", b.address]]));
    a.transport.start();
    await waitFor("new link", () => a.transport.stats().get("b")?.connected === true && b.transport.stats().get("a")?.connected === true);
    b.transport.send([heartbeat("b", "a", 2)]);
    await waitFor("traffic resumes", () => a.received.length === 1);
    expect(a.received[0]).toEqual(heartbeat("b", "a", 2));
  });

  test("the send queue stays bounded while the peer is down; drops are counted", async () => {
    const dead = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("gone") });
    const deadAddress = `127.0.0.1:${dead.port}`;
    await dead.stop(true);
    const a = startNode("a", { queue: { messagesMax: 100, bytesMax: 1_000_000 } });
    a.transport.setPeers(new Map([["b", deadAddress]]));
    a.transport.start();
    a.transport.send(Array.from({ length: 1000 }, (_, i) => append("a", "b", i)));
    const stats = a.transport.stats().get("b")!;
    expect(stats).toMatchObject({ connected: false, queuedMessages: 100, dropped: 900 });

    const small = startNode("c", { queue: { messagesMax: 10_000, bytesMax: 2000 } });
    small.transport.setPeers(new Map([["d", deadAddress]]));
    small.transport.start();
    small.transport.send(Array.from({ length: 1000 }, (_, i) => append("c", "d", i)));
    const byBytes = small.transport.stats().get("d")!;
    expect(byBytes.queuedBytes).toBeLessThanOrEqual(2000);
    expect(byBytes.queuedMessages + byBytes.dropped).toBe(1000);
    await Bun.sleep(60); // a few reconnect attempts fail without growing anything
    expect(a.transport.stats().get("b")).toMatchObject({ connected: false, queuedMessages: 100, dropped: 900 });
  });

  test("a 100 MiB snapshot crosses the link both ways as fragments, while requests keep flowing", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    wire([a, b]);
    b.transport.onApp(({ body }) => body);
    await waitFor("link up", () => a.transport.stats().get("b")?.connected === true && b.transport.stats().get("a")?.connected === true);
    // Over the 64 MiB single-message limit this replaced, and over Bun's 16 MiB default payload.
    const data = new Uint8Array(100 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i >> 12) & 0xff;
    const snap = (from: NodeId, to: NodeId): Message => ({
      type: "snap", from, to, term: 1, snapshot: { meta: { index: 9, term: 1, confState: { voters: ["a", "b"], learners: [] } }, data },
    });
    const framesBefore = a.transport.stats().get("b")!.framesSent;
    a.transport.send([snap("a", "b")]);
    b.transport.send([snap("b", "a")]);
    await Bun.sleep(0);
    const reply = await a.transport.request("b", new Uint8Array([42]), 5000);
    expect(reply).toEqual({ ok: true, body: new Uint8Array([42]) });
    // The answer came back while the snapshot to b was still in fragments: it did not queue behind it.
    expect(b.received.length).toBe(0);
    await waitFor("both snapshots", () => a.received.length === 1 && b.received.length === 1, 20_000);
    for (const got of [a.received[0], b.received[0]]) {
      if (got?.type !== "snap") throw new Error(`expected a snapshot, got ${got?.type}`);
      expect(got.snapshot.data.length).toBe(data.length);
      expect(Buffer.compare(got.snapshot.data, data)).toBe(0);
    }
    expect(a.transport.stats().get("b")!.dropped).toBe(0);
    expect(a.transport.stats().get("b")!.framesSent - framesBefore).toBeGreaterThanOrEqual(2);
  }, 30_000);

  test("raft messages sent after a fragmented snapshot arrive after it, in order", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    wire([a, b]);
    await waitFor("link up", () => a.transport.stats().get("b")?.connected === true);
    const data = new Uint8Array(24 * 1024 * 1024).fill(3);
    const snap: Message = { type: "snap", from: "a", to: "b", term: 1, snapshot: { meta: { index: 9, term: 1, confState: { voters: ["a", "b"], learners: [] } }, data } };
    a.transport.send([snap]);
    // Later turns, while fragments are still going out: Raft needs these after the snapshot
    // (a probe that overtook it would be rejected and trigger another snapshot).
    for (let i = 0; i < 5; i++) {
      await Bun.sleep(0);
      a.transport.send([append("a", "b", 10 + i)]);
    }
    await waitFor("all delivered", () => b.received.length === 6, 20_000);
    expect(b.received.map((m) => m.type)).toEqual(["snap", "app", "app", "app", "app", "app"]);
    expect(b.received.slice(1).map((m) => (m.type === "app" ? m.index : -1))).toEqual([10, 11, 12, 13, 14]);
  });

  test("a message too large for one frame is dropped, counted and logged", () => {
    const a = startNode("a");
    a.transport.setPeers(new Map([["b", "127.0.0.1:1"]]));
    const data = new Uint8Array(transportLimits.frameBytesMax);
    a.transport.send([{ type: "snap", from: "a", to: "b", term: 1, snapshot: { meta: { index: 1, term: 1, confState: { voters: [], learners: [] } }, data } }]);
    expect(a.transport.stats().get("b")).toMatchObject({ dropped: 1, queuedMessages: 0 });
    expect(a.logs.some((l) => l.includes("too large for one frame"))).toBe(true);
  });

  test("messages to unknown peers are counted as unroutable", () => {
    const a = startNode("a");
    a.transport.start();
    a.transport.send([heartbeat("a", "zz", 1)]);
    expect(a.transport.unroutable).toBe(1);
  });

  test("app request/response both ways, timeout, unreachable, and stop", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    wire([a, b]);
    b.transport.onApp(({ from, body }) => new TextEncoder().encode(`${from}:${new TextDecoder().decode(body)}`));
    a.transport.onApp(async ({ body }) => {
      await Bun.sleep(body[0] === 1 ? 300 : 0);
      return body;
    });
    await waitFor("link up", () => a.transport.stats().get("b")?.connected === true && b.transport.stats().get("a")?.connected === true);
    const reply = await a.transport.request("b", new TextEncoder().encode("ping"), 2000);
    expect(reply.ok && new TextDecoder().decode(reply.body)).toBe("a:ping");
    expect(await b.transport.request("a", new Uint8Array([2, 3]), 2000)).toEqual({ ok: true, body: new Uint8Array([2, 3]) });
    expect(await b.transport.request("a", new Uint8Array([1]), 50)).toEqual({ ok: false, reason: "timeout" });
    expect(await a.transport.request("nobody", new Uint8Array(1), 50)).toEqual({ ok: false, reason: "unknown-peer" });
    const pendingAtStop = b.transport.request("a", new Uint8Array([1]), 2000);
    b.transport.stop();
    expect(await pendingAtStop).toEqual({ ok: false, reason: "stopped" });
    await waitFor("link down", () => a.transport.stats().get("b")?.connected === false);
    expect(await a.transport.request("b", new Uint8Array(1), 50)).toEqual({ ok: false, reason: "unreachable" });
  });

  test("requests and answers made in one turn of the event loop share frames", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    wire([a, b]);
    b.transport.onApp(({ body }) => body);
    await waitFor("link up", () => a.transport.stats().get("b")?.connected === true && b.transport.stats().get("a")?.connected === true);
    const framesBefore = [a.transport.stats().get("b")!.framesSent, b.transport.stats().get("a")!.framesSent];
    const count = 500;
    const replies = await Promise.all(Array.from({ length: count }, (_, i) => a.transport.request("b", new Uint8Array([i % 256, i >> 8]), 2000)));
    replies.forEach((reply, i) => expect(reply).toEqual({ ok: true, body: new Uint8Array([i % 256, i >> 8]) }));
    const requestFrames = a.transport.stats().get("b")!.framesSent - framesBefore[0]!;
    const answerFrames = b.transport.stats().get("a")!.framesSent - framesBefore[1]!;
    // One frame per turn, not per item (answers may span a few turns as the handler resolves them).
    expect(requestFrames).toBeLessThanOrEqual(2);
    expect(answerFrames).toBeLessThan(count / 10);
  });

  test("a request already sent when its peer is removed fails as disconnected, never as unknown-peer", async () => {
    // "unknown-peer" promises the request never left; the caller may retry it. After sending, the
    // peer may have acted on it, so the caller must hear "disconnected" (outcome unknown).
    const [a, b] = [startNode("a"), startNode("b")];
    wire([a, b]);
    b.transport.onApp(async ({ body }) => {
      await Bun.sleep(300);
      return body;
    });
    await waitFor("link up", () => a.transport.stats().get("b")?.connected === true);
    const inFlight = a.transport.request("b", new Uint8Array([7]), 2000);
    await Bun.sleep(20);
    a.transport.setPeers(new Map());
    expect(await inFlight).toEqual({ ok: false, reason: "disconnected" });
  });

  test("setPeers removes a link and closes its socket", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    wire([a, b]);
    await waitFor("link up", () => b.transport.stats().get("a")?.connected === true);
    a.transport.setPeers(new Map());
    expect(a.transport.stats().size).toBe(0);
    await waitFor("acceptor sees the link down", () => b.transport.stats().get("a")?.connected === false);
  });
});

/** A hand-driven dialer: completes the real handshake, then lets the test send arbitrary frames. */
function rawAuthenticatedClient(address: string, selfId: NodeId, peerId: NodeId) {
  const ws = new WebSocket(`ws://${address}${PEER_PATH}`);
  ws.binaryType = "arraybuffer";
  const handshake = new DialerHandshake({ selfId, peerId, secret: secretBytes(secret), nonce: randomNonce() });
  const send = (frame: Frame) => ws.send(encodeFrame(frame));
  const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
  const authenticated = new Promise<void>((resolve, reject) => {
    ws.onopen = () => send(handshake.opening);
    ws.onmessage = (event) => {
      const step = handshake.receive(decodeFrame(new Uint8Array(event.data as ArrayBuffer)));
      if (step.send !== null) send(step.send);
      if (step.result.kind === "authenticated") resolve();
      if (step.result.kind === "failed") reject(new Error(step.result.reason));
    };
  });
  return { ws, send, closed, authenticated };
}
