/**
 * @module Peer-link throughput: two Transports in this process, one authenticated WebSocket over
 * loopback, the sender pipelining Raft `app` messages with 64-byte entries (a window of unreceived
 * messages, like the leader's inflight window). Both ends share one JS thread, so the link figures
 * are a floor for two real nodes. Also the pure codec: encode and decode of one raft frame holding
 * 1000 × 64-byte entries, per CPU-second (median of 5 rounds) so other load on the machine does not
 * distort it. Inputs from a fixed seed; about 7 s in total. MB = 10^6 bytes.
 *
 * Keys: messages_per_s (1 entry per message), entries_per_s (100 entries per message),
 * frame_encode_mb_per_s and frame_decode_mb_per_s (frame bytes per second).
 */
import { Hono } from "hono";
import { assert } from "../server/assert.ts";
import { Logger } from "../server/log/logger.ts";
import type { Entry, Message } from "../server/raft/types.ts";
import { decodeFrame, encodeFrame, type Frame } from "../server/transport/codec.ts";
import { peerWebSocket, registerPeerRoute } from "../server/transport/peer-route.ts";
import { Transport } from "../server/transport/transport.ts";
import { seededBytes, type Bench, type Metrics } from "./harness.ts";

const entryBytes = 64;
const secret = "bench-cluster-secret-0123456789";
const linkPhaseMs = 2000;
const codecRounds = 5;
const codecRoundMs = 200;
const waitMsMax = 10_000;

function entries(count: number, firstIndex: number): Entry[] {
  const data = seededBytes(0x5eed + firstIndex, count * entryBytes);
  return Array.from({ length: count }, (_, i) => ({
    term: 7, index: firstIndex + i, type: "normal" as const, data: data.subarray(i * entryBytes, (i + 1) * entryBytes),
  }));
}

function appMessage(entriesCount: number, index: number): Message {
  return { type: "app", from: "a", to: "b", term: 7, index, logTerm: 7, commit: index, entries: entries(entriesCount, index + 1) };
}

interface Link {
  readonly sender: Transport;
  readonly receiver: Transport;
  received: number;
  stop(): Promise<void>;
}

async function openLink(): Promise<Link> {
  const log = new Logger({ node: "bench", level: "error", pretty: false, sink: { write: () => {} } });
  const ends = ["a", "b"].map((id) => {
    const transport = new Transport({ id, secret, log });
    const app = new Hono();
    registerPeerRoute(app, transport);
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket: peerWebSocket });
    return { id, transport, server };
  });
  const peers = new Map(ends.map((e) => [e.id, `127.0.0.1:${e.server.port}`]));
  for (const end of ends) {
    end.transport.setPeers(peers);
    end.transport.start();
  }
  const [a, b] = [ends[0]!, ends[1]!];
  const link: Link = {
    sender: a.transport,
    receiver: b.transport,
    received: 0,
    stop: async () => {
      for (const end of ends) end.transport.stop();
      for (const end of ends) await end.server.stop(true);
    },
  };
  b.transport.onMessages((messages) => (link.received += messages.length));
  await waitUntil(() => a.transport.stats().get("b")?.connected === true);
  return link;
}

async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + waitMsMax;
  while (!condition()) {
    assert(Date.now() < deadline, "benchmark wait exceeded its bound");
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Pipelines `chunk` until `ms` pass, keeping at most `window` messages unreceived; messages/s. */
async function pipeline(link: Link, chunk: readonly Message[], window: number, ms: number): Promise<number> {
  const start = Bun.nanoseconds();
  const deadline = start + ms * 1e6;
  const base = link.received;
  let sent = 0;
  while (Bun.nanoseconds() < deadline) {
    if (sent - (link.received - base) + chunk.length <= window) {
      link.sender.send(chunk);
      sent += chunk.length;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await waitUntil(() => link.received - base >= sent);
  const seconds = (Bun.nanoseconds() - start) / 1e9;
  assert(link.sender.stats().get("b")?.dropped === 0, "the window keeps the queue from dropping");
  return sent / seconds;
}

/** Process CPU time in ms: the codec is single-threaded pure work, so CPU time is immune to other load. */
function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Calls per CPU-second: the median of `rounds` rounds of `roundMs` CPU-ms each. */
function rate(fn: () => void, rounds: number, roundMs: number): number {
  const rates: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const start = cpuMs();
    let calls = 0;
    // Bounded by CPU time; the process is busy in fn, so CPU time advances.
    do {
      fn();
      calls++;
    } while (cpuMs() - start < roundMs);
    rates.push((calls * 1000) / (cpuMs() - start));
  }
  rates.sort((x, y) => x - y);
  return rates[Math.floor(rates.length / 2)]!;
}

function codecMetrics(): Metrics {
  const frame: Frame = { type: "raft", messages: [appMessage(1000, 1)] };
  const encoded = encodeFrame(frame);
  rate(() => encodeFrame(frame), 1, 200);
  const encodesPerSecond = rate(() => encodeFrame(frame), codecRounds, codecRoundMs);
  rate(() => decodeFrame(encoded), 1, 200);
  const decodesPerSecond = rate(() => decodeFrame(encoded), codecRounds, codecRoundMs);
  return {
    frame_bytes: encoded.length,
    frame_encode_mb_per_s: (encodesPerSecond * encoded.length) / 1e6,
    frame_decode_mb_per_s: (decodesPerSecond * encoded.length) / 1e6,
  };
}

export default {
  name: "transport",
  async run(): Promise<Metrics> {
    const single = Array.from({ length: 256 }, (_, i) => appMessage(1, i));
    const batched = Array.from({ length: 16 }, (_, i) => appMessage(100, i * 100));
    const link = await openLink();
    try {
      await pipeline(link, single, 2048, 300); // warm-up
      const messagesPerSecond = await pipeline(link, single, 2048, linkPhaseMs);
      const batchedPerSecond = await pipeline(link, batched, 256, linkPhaseMs);
      return {
        messages_per_s: Math.round(messagesPerSecond),
        entries_per_s: Math.round(batchedPerSecond * 100),
        ...codecMetrics(),
      };
    } finally {
      await link.stop();
    }
  },
} satisfies Bench;
