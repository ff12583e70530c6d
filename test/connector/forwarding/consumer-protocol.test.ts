/** The WebSocket consumer protocol's pure parts: message parsing (consumer-protocol.ts) and the ack window (ack-window.ts). */
import { describe, expect, test } from "bun:test";
import { batchMessage, encodeServerMessage, parseClientMessage } from "../../../server/connector/forwarding/consumer-protocol.ts";
import { AckWindow } from "../../../server/connector/forwarding/ack-window.ts";
import { emptyOprEvent } from "../../../server/connector/events/event-record.ts";
import { encodeOprEvent } from "../../../server/connector/events/event-codec.ts";
import { PendingEvent } from "../../../server/state/pending-event.ts";
import type { OutboxEntry } from "../../../server/state/outbox-types.ts";

describe("parseClientMessage", () => {
  const valid: Array<[string, unknown]> = [
    ['{"type":"subscribe","v":1,"after":0}', { type: "subscribe", v: 1, after: 0 }],
    ['{"v":1,"after":1500,"type":"subscribe"}', { type: "subscribe", v: 1, after: 1500 }],
    ['{"type":"ack","v":1,"through":42}', { type: "ack", v: 1, through: 42 }],
  ];
  test.each(valid)("%s", (text, message) => expect(parseClientMessage(text)).toEqual({ ok: true, message } as never));

  const invalid: Array<[string, string | null, string]> = [
    ["binary", null, "binary message"],
    ["not JSON", "{type:subscribe}", "not valid JSON"],
    ["a list", "[1]", "a JSON object with a type"],
    ["null", "null", "a JSON object with a type"],
    ["unknown type", '{"type":"unsubscribe","v":1}', 'type must be subscribe or ack (got "unsubscribe")'],
    ["no type", '{"v":1,"after":0}', "type must be subscribe or ack (got none)"],
    ["no version", '{"type":"subscribe","after":0}', "v must be 1 (got none)"],
    ["version 2", '{"type":"ack","v":2,"through":1}', "v must be 1 (got 2)"],
    ["a typo", '{"type":"subscribe","v":1,"afer":0}', "unknown key 'afer' in subscribe (known: type, v, after)"],
    ["after missing", '{"type":"subscribe","v":1}', "after must be a sequence number"],
    ["through negative", '{"type":"ack","v":1,"through":-1}', "through must be a sequence number"],
    ["through fractional", '{"type":"ack","v":1,"through":1.5}', "through must be a sequence number"],
    ["through a string", '{"type":"ack","v":1,"through":"5"}', "through must be a sequence number"],
    ["through beyond safe integers", '{"type":"ack","v":1,"through":9007199254740993}', "through must be a sequence number"],
    ["too long", `{"type":"ack","v":1,"through":1,"pad":"${"x".repeat(1100)}"}`, "at most 1024"],
  ];
  test.each(invalid)("%s", (_name, text, error) => {
    const parsed = parseClientMessage(text);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toContain(error);
  });

  test("a batch message names its first and last seq and carries id, seq and event", () => {
    const entries: OutboxEntry[] = [4, 5, 9].map((seq) => new PendingEvent(seq, `3.${seq}`, 1, encodeOprEvent({ ...emptyOprEvent(), title: `t${seq}` })));
    const decoded = JSON.parse(encodeServerMessage(batchMessage(2, entries))) as { type: string; v: number; batch: number; first: number; last: number; events: Array<{ seq: number; id: string; event: { title: string } }> };
    expect([decoded.type, decoded.v, decoded.batch, decoded.first, decoded.last]).toEqual(["batch", 1, 2, 4, 9]);
    expect(decoded.events.map((e) => [e.seq, e.id, e.event.title])).toEqual([
      [4, "3.4", "t4"],
      [5, "3.5", "t5"],
      [9, "3.9", "t9"],
    ]);
  });
});

const entry = (seq: number): OutboxEntry => new PendingEvent(seq, `1.${seq}`, 1, encodeOprEvent(emptyOprEvent()));
const seqs = (from: number, to: number): OutboxEntry[] => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i));

describe("AckWindow", () => {
  test("acks are cumulative: one ack settles every batch it covers, oldest first", () => {
    const w = new AckWindow(0, 4);
    expect([w.open(1, 10), w.open(11, 20), w.open(21, 30)]).toEqual([1, 2, 3]);
    expect(w.ack(20)).toEqual({ ok: true, settled: [1, 2] });
    expect(w.batchesInFlight).toBe(1);
    expect(w.ack(30)).toEqual({ ok: true, settled: [3] });
    expect([w.ackedThrough, w.sentThrough]).toEqual([30, 30]);
  });

  test("an ack into the middle of a batch is kept but does not settle it; a re-send carries only the rest", () => {
    const w = new AckWindow(0, 4);
    w.open(1, 10);
    expect(w.ack(4)).toEqual({ ok: true, settled: [] });
    expect(w.abandon()).toEqual([1]);
    expect(w.lacking(seqs(1, 10)).map((e) => e.seq)).toEqual([5, 6, 7, 8, 9, 10]);
  });

  test("after (events kept from an earlier connection) counts as acked: nothing at or below it is lacking", () => {
    const w = new AckWindow(1500, 4);
    expect(w.lacking(seqs(1001, 1500))).toEqual([]);
    expect(w.lacking(seqs(1401, 1600)).map((e) => e.seq)[0]).toBe(1501);
    expect(w.ack(1500)).toEqual({ ok: true, settled: [] });
  });

  test("an ack beyond the last event sent is a protocol error; an old ack is harmless", () => {
    const w = new AckWindow(0, 4);
    w.open(1, 10);
    expect(w.ack(11)).toEqual({ ok: false, error: "ack through 11 is beyond the last event sent (10)" });
    expect(w.ack(10)).toEqual({ ok: true, settled: [1] });
    expect(w.ack(3)).toEqual({ ok: true, settled: [] });
    expect(w.ackedThrough).toBe(10);
  });

  test("a late ack after abandon still raises the watermark", () => {
    const w = new AckWindow(0, 4);
    w.open(1, 10);
    w.open(11, 20);
    w.abandon();
    expect(w.ack(20)).toEqual({ ok: true, settled: [] });
    expect(w.lacking(seqs(1, 20))).toEqual([]);
  });

  test("the bound on batches in flight, the watermark and no overlap are invariants", () => {
    const w = new AckWindow(5, 2);
    expect(() => w.open(5, 9)).toThrow("must lie after the consumer's watermark 5");
    w.open(6, 9);
    expect(() => w.open(8, 12)).toThrow("batch 8..12 overlaps what was sent (through 9)");
    w.open(10, 12);
    expect(() => w.open(13, 14)).toThrow("at most 2 batches in flight");
  });

  // [sent through, committed cursor, first seq of the batch, continues?]
  const continuation: Array<[number, number, number, boolean]> = [
    [10, 0, 11, true],
    [10, 10, 11, true],
    [10, 0, 41, false], // a gap of 11..40: a cumulative ack of the batch would skip it
    [10, 40, 41, true], // 11..40 are delivered already (to an earlier consumer) and gone
    [10, 40, 11, false],
    [10, 0, 6, false], // overlaps what is in flight
  ];
  test.each(continuation)("sent through %d, cursor %d: a batch from %d continues: %p", (sent, cursor, first, continues) => {
    const w = new AckWindow(0, 4);
    w.open(1, sent);
    expect(w.continues(first, cursor)).toBe(continues);
  });

  test("abandon: the next batch continues after the watermark; an ack up to the last event ever sent still counts", () => {
    const w = new AckWindow(0, 4);
    w.open(1, 10);
    w.open(11, 20);
    w.ack(5);
    expect(w.abandon()).toEqual([1, 2]);
    expect([w.ackedThrough, w.sentThrough]).toEqual([5, 5]);
    expect(w.continues(6, 0)).toBe(true);
    expect(w.continues(21, 0)).toBe(false);
    expect(w.open(6, 10)).toBe(3);
    expect(w.ack(21)).toEqual({ ok: false, error: "ack through 21 is beyond the last event sent (20)" });
    expect(w.ack(15)).toEqual({ ok: true, settled: [3] });
    expect([w.ackedThrough, w.sentThrough]).toEqual([15, 15]);
    expect(w.continues(16, 0)).toBe(true);
  });
});
