/**
 * The forwarder's in-flight window and a WebSocket consumer's AckWindow kept in step
 * (event-forwarder.ts, websocket-target.ts, ack-window.ts), with fake sockets and a group whose
 * cursor moves wait on a gate the test opens: so a consumer can be replaced exactly while a cursor
 * move commits, with no timing luck involved.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { EventForwarder } from "../../../server/connector/forwarding/event-forwarder.ts";
import { WebSocketTarget } from "../../../server/connector/forwarding/websocket-target.ts";
import type { ConsumerSocket } from "../../../server/connector/forwarding/consumer-registry.ts";
import type { ForwardTarget, SendOutcome, TargetStatus } from "../../../server/connector/forwarding/forward-target.ts";
import { Outbox } from "../../../server/state/outbox.ts";
import { encodeOprEvent } from "../../../server/connector/events/event-codec.ts";
import { PendingEvent } from "../../../server/state/pending-event.ts";
import type { OutboxEntry } from "../../../server/state/outbox-types.ts";
import { decodeCommand } from "../../../server/state/command-codec.ts";
import { emptyOprEvent, type OprEvent } from "../../../server/connector/events/event-record.ts";
import { Logger } from "../../../server/log/logger.ts";

const log = new Logger({ node: "n1", level: "error", pretty: false, sink: { write: () => {} } });

/* eslint-disable @typescript-eslint/no-explicit-any -- messages are read loosely */
type Message = any;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

interface FakeSocket extends ConsumerSocket {
  readonly messages: Message[];
  closed: { readonly code: number; readonly reason: string } | null;
}

/** A consumer's socket that records what it is sent; `onBatch` sees each batch (after it is recorded). */
function fakeSocket(remote: string, onBatch: (batch: Message) => void = () => {}): FakeSocket {
  const socket: FakeSocket = {
    remote,
    messages: [],
    closed: null,
    send(text) {
      if (socket.closed !== null) return false;
      const message = JSON.parse(text) as Message;
      socket.messages.push(message);
      if (message.type === "batch") onBatch(message);
      return true;
    },
    close(code, reason) {
      socket.closed ??= { code, reason };
    },
  };
  return socket;
}

const batchesOf = (socket: FakeSocket): Array<[number, number]> => socket.messages.filter((m) => m.type === "batch").map((m) => [m.first, m.last]);

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(2);
  }
}

/** `events` events of package pkg in a real outbox; cursor moves wait for `release()`. */
function gatedOutbox(events: number) {
  const outbox = new Outbox();
  const context = { holders: new Map([["pkg", { node: "n1", epoch: 1 }]]), deployed: new Set(["pkg"]) };
  outbox.apply({ op: "accept", package: "pkg", atMs: 1, requestKey: null, eventKeys: Array(events).fill(null), events: Array.from({ length: events }, (_, i) => ({ ...emptyOprEvent(), title: `e${i + 1}` })) }, 1, context);
  const held: Array<() => void> = [];
  let holding = true;
  let index = 1;
  const group = {
    propose: async (data: Uint8Array) => {
      const command = decodeCommand(data);
      if (command.kind !== "outbox") throw new Error(`unexpected command ${command.kind}`);
      if (holding) await new Promise<void>((resolve) => held.push(resolve));
      index++;
      return { index, result: outbox.apply(command.op, index, context) };
    },
    waitApplied: async () => {},
  };
  return {
    outbox,
    group,
    cursor: () => outbox.status()[0]?.cursor ?? 0,
    proposalsHeld: () => held.length,
    /** Lets the held cursor moves commit, and every later one at once. */
    release: () => {
      holding = false;
      for (const resolve of held.splice(0)) resolve();
    },
  };
}

function forwarderTo(target: ForwardTarget, events: number) {
  const gated = gatedOutbox(events);
  const forwarder = new EventForwarder({ packageName: "pkg", epoch: 1, mayAct: () => true, group: gated.group as never, state: { outbox: gated.outbox } as never, target, log, batchEventsMax: 10 });
  cleanups.push(() => forwarder.stop());
  return { ...gated, forwarder };
}

/**
 * The review's scenario (.tmp/review/ws-reorder.ts): consumer A holds 1..10, 11..20, 21..30, 31..40
 * and acks 10; while that cursor move commits, its twin B subscribes with after 10 and replaces it
 * (4409), so A's other batches fail as retries; then the move commits.
 */
async function replacedDuringCursorMove(bOnBatch: (session: () => ReturnType<WebSocketTarget["attach"]>, batch: Message) => void) {
  const gated = gatedOutbox(60);
  const target = new WebSocketTarget({ packageName: "pkg", epoch: 1, cursor: gated.cursor, registry: null, log, ackTimeoutMs: 60_000 });
  const forwarder = new EventForwarder({ packageName: "pkg", epoch: 1, mayAct: () => true, group: gated.group as never, state: { outbox: gated.outbox } as never, target, log, batchEventsMax: 10 });
  cleanups.push(() => forwarder.stop());
  forwarder.start();
  const a = fakeSocket("A");
  const sessionA = target.attach(a, 0);
  await until(() => batchesOf(a).length === 4);
  expect(batchesOf(a)).toEqual([
    [1, 10],
    [11, 20],
    [21, 30],
    [31, 40],
  ]);
  sessionA.ack(10);
  await until(() => gated.proposalsHeld() === 1);
  let sessionB: ReturnType<WebSocketTarget["attach"]> | null = null;
  const b = fakeSocket("B", (batch) => bOnBatch(() => sessionB!, batch));
  sessionB = target.attach(b, 10);
  expect(a.closed?.code).toBe(4409);
  gated.release();
  await until(() => gated.cursor() === 10);
  await until(() => batchesOf(b).length > 0);
  return { ...gated, target, forwarder, b, sessionB };
}

describe("a consumer replaced while a cursor move commits", () => {
  test("the new consumer's first batch starts right after its `after`; acking it cumulatively skips nothing", async () => {
    // B acks every batch as it arrives (cumulative: its last seq), as the protocol says.
    const s = await replacedDuringCursorMove((session, batch) => setTimeout(() => session().ack(batch.last), 0));
    expect(batchesOf(s.b)[0]).toEqual([11, 20]);
    await until(() => s.cursor() === 60);
    const sent = new Set(s.b.messages.filter((m) => m.type === "batch").flatMap((m) => m.events.map((e: { seq: number }) => e.seq)));
    expect(Array.from({ length: 50 }, (_, i) => i + 11).filter((seq) => !sent.has(seq))).toEqual([]);
  });

  test("a new consumer that does not ack: its window fills in order and the node does not crash (no assertion)", async () => {
    const s = await replacedDuringCursorMove(() => {});
    await until(() => batchesOf(s.b).length === 4);
    await Bun.sleep(100); // a fifth batch would go now, and break the bound of 4 in flight
    expect(batchesOf(s.b)).toEqual([
      [11, 20],
      [21, 30],
      [31, 40],
      [41, 50],
    ]);
    expect(s.target.status()).toMatchObject({ consumer: { remote: "B", sentThrough: 50, ackedThrough: 10, batchesInFlight: 4 } });
    s.sessionB.ack(50);
    await until(() => s.cursor() === 50);
    await until(() => batchesOf(s.b).length === 5);
    expect(batchesOf(s.b)[4]).toEqual([51, 60]);
  });
});

/** A target whose outcomes the test decides; it counts `abandon` calls. */
class ScriptedTarget implements ForwardTarget {
  readonly type = "websocket";
  readonly batchesInFlightMax = 4;
  readonly sends: Array<{ readonly first: number; readonly last: number; readonly settle: (outcome: SendOutcome) => void }> = [];
  abandons = 0;
  /** Thrown synchronously by the send with this index (0-based), as a batch that cannot be encoded. */
  throwAt: { readonly send: number; readonly error: Error } | null = null;
  private calls = 0;

  start(): void {}
  stop(): void {}
  committed(): void {}
  alarm(): string | null {
    return null;
  }
  status(): TargetStatus {
    return { type: "websocket", consumerConnected: true, consumer: null };
  }
  send(batch: readonly OutboxEntry[]): Promise<SendOutcome> {
    if (this.throwAt?.send === this.calls++) throw this.throwAt.error;
    return new Promise((settle) => this.sends.push({ first: batch[0]!.seq, last: batch.at(-1)!.seq, settle }));
  }
  abandon(): void {
    this.abandons++;
  }
}

describe("the forwarder's window", () => {
  test("after a delivered head, batches already failed are dropped and the target is told; nothing is sent after a failed batch", async () => {
    const target = new ScriptedTarget();
    const s = forwarderTo(target, 60);
    s.forwarder.start();
    await until(() => target.sends.length === 4);
    for (const later of target.sends.slice(1)) later.settle({ kind: "retry", reason: "consumer replaced" });
    await Bun.sleep(5);
    target.sends[0]!.settle({ kind: "delivered" });
    await until(() => s.proposalsHeld() === 1); // the cursor move for 1..10
    expect(target.abandons).toBe(1);
    s.release();
    await until(() => target.sends.length === 8);
    await Bun.sleep(20);
    // Sent again from the cursor, in order: never a batch beyond the failed ones.
    expect(target.sends.map((b) => [b.first, b.last])).toEqual([
      [1, 10],
      [11, 20],
      [21, 30],
      [31, 40],
      [11, 20],
      [21, 30],
      [31, 40],
      [41, 50],
    ]);
    expect(s.cursor()).toBe(10);
  });

  test("a failed head drops the window and the target is told", async () => {
    const target = new ScriptedTarget();
    const s = forwarderTo(target, 20);
    s.forwarder.start();
    await until(() => target.sends.length === 2);
    target.sends[0]!.settle({ kind: "retry", reason: "consumer gone" });
    await until(() => target.abandons === 1);
    expect(s.forwarder.status().lastError).toBe("consumer gone");
    await until(() => target.sends.length === 4); // after the pause, from the cursor
    expect(target.sends.slice(2).map((b) => [b.first, b.last])).toEqual([
      [1, 10],
      [11, 20],
    ]);
  });

  test("a send that throws drops the window and the target is told", async () => {
    const target = new ScriptedTarget();
    target.throwAt = { send: 1, error: new Error("cannot encode") };
    const s = forwarderTo(target, 20);
    s.forwarder.start();
    await until(() => target.abandons === 1);
    expect(s.forwarder.status().lastError).toBe("cannot encode");
  });
});

const entry = (seq: number, event: OprEvent = emptyOprEvent()): OutboxEntry => new PendingEvent(seq, `1.${seq}`, 1, encodeOprEvent(event));
const entries = (from: number, to: number): OutboxEntry[] => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i));

/** A started target with no forwarder: the test calls `send` itself. */
function startedTarget(options: { cursor?: () => number; lastSeq?: () => number } = {}): WebSocketTarget {
  const target = new WebSocketTarget({ packageName: "pkg", epoch: 1, cursor: options.cursor ?? (() => 0), registry: null, log, ackTimeoutMs: 60_000 });
  target.start({ wake: () => {}, lastSeq: options.lastSeq ?? (() => 1_000) });
  cleanups.push(() => target.stop());
  return target;
}

describe("WebSocketTarget.send", () => {
  test("a batch that does not start right after what the consumer was sent (or the cursor) is a retry, not sent", async () => {
    const target = startedTarget();
    const socket = fakeSocket("B");
    target.attach(socket, 10);
    const outcome = await target.send(entries(41, 50));
    expect(outcome.kind).toBe("retry");
    expect(outcome.kind === "retry" && outcome.reason).toContain("batch 41..50 does not follow seq 10");
    expect(batchesOf(socket)).toEqual([]);
    expect(target.status()).toMatchObject({ consumer: { sentThrough: 10, batchesInFlight: 0 } });
    void target.send(entries(11, 20));
    expect(batchesOf(socket)).toEqual([[11, 20]]);
  });

  test("a batch that starts right after the committed cursor goes (events up to it were delivered already)", () => {
    const target = startedTarget({ cursor: () => 40 });
    const socket = fakeSocket("B");
    target.attach(socket, 10);
    void target.send(entries(41, 50));
    expect(batchesOf(socket)).toEqual([[41, 50]]);
  });

  test("an event that cannot be encoded uses up no window slot", () => {
    const target = startedTarget();
    const socket = fakeSocket("A");
    target.attach(socket, 0);
    const bad = { ...emptyOprEvent(), custom_attributes: { size: 1n } } as unknown as OprEvent;
    expect(() => target.send([entry(1, bad)])).toThrow();
    expect(target.status()).toMatchObject({ consumer: { sentThrough: 0, batchesInFlight: 0 } });
    void target.send(entries(1, 10));
    expect(socket.messages.filter((m) => m.type === "batch").map((m) => [m.batch, m.first])).toEqual([[1, 1]]);
  });

  test("after an ack timeout the batches go again from the ack watermark; a late ack of one still counts", async () => {
    const target = new WebSocketTarget({ packageName: "pkg", epoch: 1, cursor: () => 0, registry: null, log, ackTimeoutMs: 50 });
    target.start({ wake: () => {}, lastSeq: () => 1_000 });
    cleanups.push(() => target.stop());
    const socket = fakeSocket("A");
    const session = target.attach(socket, 0);
    const outcomes = [target.send(entries(1, 10)), target.send(entries(11, 20))];
    expect((await Promise.all(outcomes)).map((o) => o.kind)).toEqual(["retry", "retry"]);
    expect(target.status()).toMatchObject({ consumer: { sentThrough: 0, ackedThrough: 0, batchesInFlight: 0 } });
    const again = target.send(entries(1, 10));
    session.ack(20); // late, for the abandoned batch 11..20: the consumer has it
    expect(await again).toEqual({ kind: "delivered" });
    expect(socket.closed).toBeNull();
    expect(await target.send(entries(11, 20))).toEqual({ kind: "delivered" });
    void target.send(entries(21, 30));
    expect(batchesOf(socket).at(-1)).toEqual([21, 30]);
  });
});

describe("a subscribe's after", () => {
  test("beyond the last accepted event: an error naming it, then 4400; the consumer already there stays", () => {
    const target = startedTarget({ lastSeq: () => 60 });
    const a = fakeSocket("A");
    target.attach(a, 0);
    const b = fakeSocket("B");
    target.attach(b, 61);
    expect(b.messages).toEqual([{ type: "error", v: 1, message: "after 61 is beyond the last event accepted for package pkg (60)" }]);
    expect(b.closed?.code).toBe(4400);
    expect(a.closed).toBeNull();
    expect(target.status()).toMatchObject({ consumer: { remote: "A" } });
  });

  test("at the last accepted event: subscribed", () => {
    const target = startedTarget({ lastSeq: () => 60 });
    const b = fakeSocket("B");
    target.attach(b, 60);
    expect(b.messages.map((m) => m.type)).toEqual(["subscribed"]);
    expect(b.closed).toBeNull();
  });
});
