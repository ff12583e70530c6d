/**
 * The OMi event list written from binary events (omi-xml-bytes.ts) against the string path it
 * stands in for: byte for byte the same document, for seeded random events and for binary forms
 * our encoder never writes (repeated fields, odd attribute names, malformed bytes).
 */
import { describe, expect, test } from "bun:test";
import { customAttributeCode, decodeOprEvent, duplicateCountCode, encodeOprEvent, endCode } from "../../../server/connector/events/event-codec.ts";
import { emptyOprEvent, type OprEvent } from "../../../server/connector/events/event-record.ts";
import { omiEventListBytes } from "../../../server/connector/events/omi-xml-bytes.ts";
import { writeOmiEventList } from "../../../server/connector/events/omi-xml.ts";
import { seededRng } from "../../../server/raft/prng.ts";

const utf8 = new TextEncoder();
/** What the forwarder sent before: decode, write the XML string, encode it. */
const viaStrings = (encoded: readonly Uint8Array[]) => utf8.encode(writeOmiEventList(encoded.map(decodeOprEvent)));
const same = (encoded: readonly Uint8Array[]) => expect(Buffer.from(omiEventListBytes(encoded)).toString("hex")).toBe(Buffer.from(viaStrings(encoded)).toString("hex"));

/** Texts that exercise every escape and the non-ASCII fallback. */
const pieces = ["", "a", "disk full", "&", "<", ">", "]]>", "\r", "\t", "\n", "\u0001", "\u001f", "\u007f", "é", "✓", "😀", "\ud800", "\ufffe", "\uffff", "x".repeat(300)];

function randomEvent(rng: ReturnType<typeof seededRng>, asciiOnly: boolean): OprEvent {
  const text = () => {
    let out = "";
    for (let i = rng.nextInt(4); i > 0; i--) {
      const piece = pieces[rng.nextInt(pieces.length)]!;
      if (!asciiOnly || /^[\x00-\x7f]*$/.test(piece)) out += piece;
    }
    return out;
  };
  const event = emptyOprEvent();
  for (const field of ["title", "description", "key", "close_key_pattern", "state", "severity", "category", "subcategory", "application", "object", "related_ci", "time_created"] as const) {
    if (rng.nextInt(2) === 0) event[field] = text();
  }
  for (let i = rng.nextInt(3); i > 0; i--) event.related_ci_hints.push(text());
  const names = ["team", "note", "1", "42", "a b", "_x", "Z"];
  for (let i = rng.nextInt(4); i > 0; i--) event.custom_attributes[names[rng.nextInt(names.length)]! + (asciiOnly ? "" : text())] = text();
  if (rng.nextInt(3) === 0) event.duplicate_count = rng.nextInt(1000);
  return event;
}

/** A binary event written by hand: [code, text] fields, [code, f64] for the count, then the end code. */
function rawEvent(fields: ReadonlyArray<readonly [number, ...(string | number)[]]>): Uint8Array {
  const parts: number[] = [];
  for (const [code, ...values] of fields) {
    parts.push(code);
    for (const value of values) {
      if (typeof value === "number") {
        const f = new DataView(new ArrayBuffer(8));
        f.setFloat64(0, value);
        parts.push(...new Uint8Array(f.buffer));
      } else {
        const bytes = utf8.encode(value);
        parts.push((bytes.length >>> 24) & 0xff, (bytes.length >>> 16) & 0xff, (bytes.length >>> 8) & 0xff, bytes.length & 0xff, ...bytes);
      }
    }
  }
  parts.push(endCode);
  return new Uint8Array(parts);
}

describe("omiEventListBytes", () => {
  test("byte for byte the string path's document, for seeded random events (ASCII, and any text)", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rng = seededRng(seed);
      const events = Array.from({ length: 1 + rng.nextInt(20) }, () => encodeOprEvent(randomEvent(rng, seed % 2 === 0)));
      try {
        same(events);
      } catch (error) {
        throw new Error(`SEED=${seed}: ${(error as Error).message}`);
      }
    }
  });

  test("binary forms the encoder never writes: repeated and empty fields, integer-like and repeated attribute names", () => {
    same([
      rawEvent([[1, "first"], [1, "second title wins"], [2, ""], [3, "k&<>"]]),
      rawEvent([[customAttributeCode, "b", "1"], [customAttributeCode, "2", "x"], [customAttributeCode, "b", "again"], [customAttributeCode, "a", "y"]]),
      rawEvent([[customAttributeCode, "", "empty name"], [duplicateCountCode, 3], [duplicateCountCode, 0]]),
      rawEvent([]),
    ]);
  });

  test("a malformed event fails as the decoder fails, whichever path it would take", () => {
    const truncated = encodeOprEvent({ ...emptyOprEvent(), title: "t" }).subarray(0, 4);
    const unknownCode = rawEvent([[99, "x"]]);
    const trailing = new Uint8Array([...rawEvent([[1, "t"]]), 7]);
    const badCount = rawEvent([[duplicateCountCode, 1.5]]);
    for (const bad of [truncated, unknownCode, trailing, badCount]) {
      let expected = "";
      try {
        viaStrings([bad]);
      } catch (error) {
        expected = (error as Error).message;
      }
      expect(expected).not.toBe("");
      expect(() => omiEventListBytes([rawEvent([[1, "fine"]]), bad])).toThrow(expected);
    }
  });

  test("every event is read before any is written: a malformed later event fails as the decoder fails, not as an earlier one's writing would", () => {
    const writesBadly = rawEvent([[1, "t"], [duplicateCountCode, 1e21]]);
    const truncated = encodeOprEvent({ ...emptyOprEvent(), title: "t" }).subarray(0, 4);
    const failure = (write: () => unknown) => {
      try {
        write();
      } catch (error) {
        return `${(error as Error).name}: ${(error as Error).message}`;
      }
      return "no error";
    };
    const expected = failure(() => viaStrings([writesBadly, truncated]));
    expect(expected).toStartWith("BinaryDecodeError");
    expect(failure(() => omiEventListBytes([writesBadly, truncated]))).toBe(expected);
    expect(failure(() => omiEventListBytes([writesBadly]))).toBe(failure(() => viaStrings([writesBadly])));
  });

  test("an event with more custom attributes than the bytes path checks goes the string path, with the same document", () => {
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`attr${i}`, `v${i}`]));
    same([encodeOprEvent({ ...emptyOprEvent(), title: "many", custom_attributes: many }), encodeOprEvent({ ...emptyOprEvent(), title: "few", custom_attributes: { a: "1" } })]);
  });
});
