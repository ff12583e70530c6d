/** The binary event form the outbox keeps (server/connector/events/event-codec.ts). */
import { describe, expect, test } from "bun:test";
import { decodeOprEvent, encodeOprEvent, encodeOprEvents } from "../../../server/connector/events/event-codec.ts";
import { emptyOprEvent, type OprEvent } from "../../../server/connector/events/event-record.ts";
import { BinaryDecodeError } from "../../../server/state/binary.ts";
import { seededRng } from "../../../server/raft/prng.ts";

const full: OprEvent = {
  ...emptyOprEvent(),
  title: "disk full ✓",
  description: "a".repeat(300),
  key: "db1:disk",
  close_key_pattern: "db1:disk<*>",
  state: "open",
  severity: "critical",
  category: "Storage",
  subcategory: "Disk",
  application: "Oracle",
  object: "/u01",
  related_ci: "db1",
  related_ci_hints: ["db1.example.com", "10.0.0.1"],
  time_created: "2026-11-24T10:00:00Z",
  custom_attributes: Object.assign(Object.create(null) as Record<string, string>, { source_event_id: "42", "": "empty name", constructor: "x" }),
  duplicate_count: 3,
};

describe("event codec", () => {
  test.each([
    ["nothing set", emptyOprEvent()],
    ["only a title", { ...emptyOprEvent(), title: "t" }],
    ["every field", full],
  ])("round-trips %s", (_, event) => {
    const decoded = decodeOprEvent(encodeOprEvent(event));
    expect({ ...decoded, custom_attributes: { ...decoded.custom_attributes } }).toEqual({ ...event, custom_attributes: { ...event.custom_attributes } });
    // Parsers build null-prototype attribute maps; so does the decoder ("constructor" is just a name).
    expect(Object.getPrototypeOf(decoded.custom_attributes)).toBeNull();
  });

  test("each field keeps its code (a persistent format): title 1 ... time_created 12, hints 20, attributes 21, duplicate count 22", () => {
    const codes = { title: 1, description: 2, key: 3, close_key_pattern: 4, state: 5, severity: 6, category: 7, subcategory: 8, application: 9, object: 10, related_ci: 11, time_created: 12 };
    for (const [field, code] of Object.entries(codes)) expect([field, [...encodeOprEvent({ ...emptyOprEvent(), [field]: "v" })]]).toEqual([field, [code, 0, 0, 0, 1, 118, 0]]);
    expect([...encodeOprEvent({ ...emptyOprEvent(), related_ci_hints: ["v"] })]).toEqual([20, 0, 0, 0, 1, 118, 0]);
    expect([...encodeOprEvent({ ...emptyOprEvent(), custom_attributes: { n: "v" } })]).toEqual([21, 0, 0, 0, 1, 110, 0, 0, 0, 1, 118, 0]);
    expect(encodeOprEvent({ ...emptyOprEvent(), duplicate_count: 2 })[0]).toBe(22);
  });

  test("an empty event is one byte; only set fields cost bytes", () => {
    expect(encodeOprEvent(emptyOprEvent()).length).toBe(1);
    expect(encodeOprEvent({ ...emptyOprEvent(), title: "abc" }).length).toBe(1 + 1 + 4 + 3);
  });

  test("random events round-trip (seeded)", () => {
    const rng = seededRng(7);
    const int = (max: number) => rng.nextInt(max);
    const text = () => String.fromCharCode(...Array.from({ length: int(20) }, () => 32 + int(0x2000)));
    for (let i = 0; i < 500; i++) {
      const event: OprEvent = { ...emptyOprEvent(), title: text(), description: text(), key: text(), related_ci_hints: Array.from({ length: int(3) }, text) };
      for (let a = int(4); a > 0; a--) event.custom_attributes[text()] = text();
      const decoded = decodeOprEvent(encodeOprEvent(event));
      expect({ ...decoded, custom_attributes: { ...decoded.custom_attributes } }).toEqual({ ...event, custom_attributes: { ...event.custom_attributes } });
    }
  });

  test("a request's events encoded together are the same bytes as one by one, each its own view (also with text that grows the buffer)", () => {
    const many = [emptyOprEvent(), full, { ...emptyOprEvent(), title: "✓".repeat(5000) }, { ...emptyOprEvent(), key: "k".repeat(100_000) }];
    const together = encodeOprEvents(many);
    expect(together.map((bytes) => [...bytes])).toEqual(many.map((event) => [...encodeOprEvent(event)]));
    expect(new Set(together.map((bytes) => bytes.buffer)).size).toBe(1);
    expect(encodeOprEvents([])).toEqual([]);
  });

  test("every truncation, an unknown field code and trailing bytes are decode errors, never a partial event", () => {
    const bytes = encodeOprEvent(full);
    for (let cut = 0; cut < bytes.length; cut++) expect(() => decodeOprEvent(bytes.subarray(0, cut))).toThrow(BinaryDecodeError);
    expect(() => decodeOprEvent(new Uint8Array([99, 0]))).toThrow("unknown event field code 99");
    expect(() => decodeOprEvent(new Uint8Array([0, 0]))).toThrow("trailing");
  });
});
