/** What the forwarder does with a batch's outcome (server/connector/forwarding/refusal.ts): table tests. */
import { describe, expect, test } from "bun:test";
import { batchEventsAfter, decideBatch, refusalBlame, type BatchDecision } from "../../../server/connector/forwarding/refusal.ts";
import { poisonRunMax } from "../../../server/connector/forwarding/refusal.ts";
import type { SendOutcome } from "../../../server/connector/forwarding/forward-target.ts";

const refused = (status: number): SendOutcome => ({ kind: "refused", status, reason: `HTTP ${status}` });

describe("refusalBlame", () => {
  const table: Array<[number, "content" | "target"]> = [
    [400, "content"],
    [413, "content"],
    [415, "content"],
    [422, "content"],
    [401, "target"],
    [403, "target"],
    [404, "target"],
    [405, "target"],
    [410, "target"],
    [301, "target"],
    [302, "target"],
    [307, "target"],
    [308, "target"],
    [406, "target"],
    [409, "target"],
    [451, "target"],
  ];
  for (const [status, blame] of table) test(`${status} blames the ${blame}`, () => expect(refusalBlame(status)).toBe(blame));
});

describe("decideBatch", () => {
  const table: Array<[string, SendOutcome, { first: number; count: number }, BatchDecision]> = [
    ["delivered", { kind: "delivered", status: 200 }, { first: 1, count: 500 }, { kind: "advance" }],
    ["delivered (a consumer's ack, no status)", { kind: "delivered" }, { first: 9, count: 1 }, { kind: "advance" }],
    ["retry (5xx, network, 408, 429)", { kind: "retry", reason: "HTTP 503" }, { first: 1, count: 500 }, { kind: "retry" }],
    ["400 of 500 events", refused(400), { first: 1, count: 500 }, { kind: "bisect", batchEventsMax: 250 }],
    ["413 of 3 events", refused(413), { first: 7, count: 3 }, { kind: "bisect", batchEventsMax: 1 }],
    ["415 of 2 events", refused(415), { first: 7, count: 2 }, { kind: "bisect", batchEventsMax: 1 }],
    ["422 of 1,001 events", refused(422), { first: 1, count: 1_001 }, { kind: "bisect", batchEventsMax: 500 }],
    ["400 of one event: poison", refused(400), { first: 42, count: 1 }, { kind: "dead-letter", seq: 42 }],
    ["413 of one event: poison", refused(413), { first: 5, count: 1 }, { kind: "dead-letter", seq: 5 }],
    ["422 of one event: poison", refused(422), { first: 5, count: 1 }, { kind: "dead-letter", seq: 5 }],
    ["401 of 500 events: never bisected", refused(401), { first: 1, count: 500 }, { kind: "alarm" }],
    ["401 of one event: never a dead letter", refused(401), { first: 1, count: 1 }, { kind: "alarm" }],
    ["403 of one event", refused(403), { first: 3, count: 1 }, { kind: "alarm" }],
    ["404 of 20", refused(404), { first: 3, count: 20 }, { kind: "alarm" }],
    ["405 of one event", refused(405), { first: 3, count: 1 }, { kind: "alarm" }],
    ["410 of one event", refused(410), { first: 3, count: 1 }, { kind: "alarm" }],
    ["a redirect (302) of one event", refused(302), { first: 3, count: 1 }, { kind: "alarm" }],
  ];
  for (const [name, outcome, batch, decision] of table) test(name, () => expect(decideBatch(outcome, batch)).toEqual(decision));

  test("a run of poison events with no delivery between them blames the target: alarm, no more dead letters", () => {
    const refused = { kind: "refused", status: 400, reason: "HTTP 400" } as const;
    expect(decideBatch(refused, { first: 7, count: 1 }, poisonRunMax - 1)).toEqual({ kind: "dead-letter", seq: 7 });
    expect(decideBatch(refused, { first: 7, count: 1 }, poisonRunMax)).toEqual({ kind: "alarm" });
    expect(decideBatch(refused, { first: 7, count: 8 }, poisonRunMax)).toEqual({ kind: "alarm" });
  });

  test("a batch without events is a bug", () => {
    expect(() => decideBatch(refused(400), { first: 1, count: 0 })).toThrow("a batch holds at least one event");
  });
});

describe("batchEventsAfter", () => {
  const table: Array<[string, BatchDecision, { current: number; normal: number }, number]> = [
    ["a delivered batch restores the normal size", { kind: "advance" }, { current: 3, normal: 2_000 }, 2_000],
    ["delivered at the normal size: unchanged", { kind: "advance" }, { current: 2_000, normal: 2_000 }, 2_000],
    ["bisect halves", { kind: "bisect", batchEventsMax: 1_000 }, { current: 2_000, normal: 2_000 }, 1_000],
    ["bisect keeps halving", { kind: "bisect", batchEventsMax: 62 }, { current: 125, normal: 2_000 }, 62],
    ["bisect never grows the batch", { kind: "bisect", batchEventsMax: 900 }, { current: 100, normal: 2_000 }, 100],
    ["a dead letter keeps the small size (the next may be poison too)", { kind: "dead-letter", seq: 9 }, { current: 1, normal: 2_000 }, 1],
    ["a retry keeps the size", { kind: "retry" }, { current: 250, normal: 2_000 }, 250],
    ["an alarm keeps the size", { kind: "alarm" }, { current: 250, normal: 2_000 }, 250],
  ];
  for (const [name, decision, sizes, next] of table) test(name, () => expect(batchEventsAfter(decision, sizes)).toBe(next));

  test("a poison event among 2,000 is isolated after ceil(log2(2000)) refusals", () => {
    // Batches always start at the first undelivered event: bisecting toward poison at the head.
    let size = 2_000;
    let refusals = 0;
    for (;;) {
      const decision = decideBatch(refused(400), { first: 1, count: size });
      refusals++;
      if (decision.kind === "dead-letter") break;
      size = batchEventsAfter(decision, { current: size, normal: 2_000 });
    }
    // 2000 → 1000 → 500 → 250 → 125 → 62 → 31 → 15 → 7 → 3 → 1: the eleventh refusal is of the lone event.
    expect(refusals).toBe(11);
  });
});
