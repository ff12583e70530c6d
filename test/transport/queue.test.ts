/**
 * @module The pure parts of a peer link: the bounded send queue and the reconnect backoff.
 */
import { describe, expect, test } from "bun:test";
import type { Message } from "../../server/raft/types.ts";
import { reconnectDelayMs } from "../../server/transport/backoff.ts";
import { SendQueue } from "../../server/transport/send-queue.ts";

const message = (term: number): Message => ({ type: "timeout-now", from: "a", to: "b", term });

describe("send queue", () => {
  test("drops beyond the message bound and counts the drops", () => {
    const queue = new SendQueue({ messagesMax: 3, bytesMax: 1000 });
    const accepted = [1, 2, 3, 4, 5].map((t) => queue.offer(message(t), 10));
    expect(accepted).toEqual([true, true, true, false, false]);
    expect({ count: queue.count, bytes: queue.bytes, dropped: queue.dropped }).toEqual({ count: 3, bytes: 30, dropped: 2 });
  });

  test("drops beyond the byte bound", () => {
    const queue = new SendQueue({ messagesMax: 100, bytesMax: 25 });
    expect([queue.offer(message(1), 10), queue.offer(message(2), 10), queue.offer(message(3), 10), queue.offer(message(4), 5)]).toEqual([true, true, false, true]);
    expect(queue.bytes).toBe(25);
  });

  test("take batches by byte target, always at least one, in FIFO order", () => {
    const queue = new SendQueue({ messagesMax: 100, bytesMax: 10_000 });
    for (let t = 1; t <= 5; t++) queue.offer(message(t), t === 1 ? 500 : 10);
    expect(queue.take(100, 100).messages.map((m) => m.term)).toEqual([1]);
    expect(queue.take(25, 100).messages.map((m) => m.term)).toEqual([2, 3]);
    expect(queue.take(1000, 1).messages.map((m) => m.term)).toEqual([4]);
    expect(queue.take(1000, 100)).toEqual({ messages: [message(5)], bytes: 10 });
    expect({ count: queue.count, bytes: queue.bytes }).toEqual({ count: 0, bytes: 0 });
  });

  test("long-running use stays compact", () => {
    const queue = new SendQueue({ messagesMax: 5000, bytesMax: 1e9 });
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 3000; i++) queue.offer(message(i), 1);
      queue.take(2000, 2000);
    }
    expect(queue.count).toBeLessThanOrEqual(5000);
    expect(queue.dropped).toBeGreaterThan(0);
  });
});

describe("reconnect backoff", () => {
  const limits = { delayMinMs: 100, delayMaxMs: 3000 };
  const cases: [number, number, number][] = [
    [0, 0, 50],
    [0, 0.999, 100],
    [1, 0, 100],
    [3, 0.5, 600],
    [5, 0, 1500],
    [5, 0.999, 2999],
    [60, 0.999, 2999],
    [1000, 0, 1500],
  ];
  test.each(cases)("attempt %d, random %d → %d ms", (attempt, random, expected) => {
    expect(reconnectDelayMs(attempt, random, limits)).toBe(expected);
  });
});
