/**
 * @module The OMi event list (omi-xml.ts) written straight from events in their binary form
 * (event-codec.ts), as the UTF-8 that goes on the wire. The holder forwards tens of thousands of
 * events a second: decoding each into an object only to write it out as a string, then encoding
 * that string, cost about 3 µs per event; this costs a fraction of it.
 *
 * The output is byte for byte what `writeOmiEventList` gives for the decoded events. An event this
 * path does not cover (non-ASCII text, custom attribute names that JavaScript would order
 * differently or that repeat, many attributes, anything malformed) goes through that path instead, so the two
 * cannot disagree, and a malformed event fails exactly as it would there.
 */
import { assert } from "../../assert.ts";
import { eventCodecLimits } from "../../constants.ts";
import { customAttributeCode, decodeOprEvent, duplicateCountCode, endCode, relatedCiHintCode, textFieldCode, textFieldCodes } from "./event-codec.ts";
import type { OprEvent } from "./event-record.ts";
import { omiLeadingFields, omiNamespace, omiTrailingFields, writeOmiEvent } from "./omi-xml.ts";

const textCodesMax = Math.max(...textFieldCodes.map(([, code]) => code));
const isTextCode = Array.from({ length: textCodesMax + 1 }, (_, code) => textFieldCodes.some(([, c]) => c === code));
/** `<title>` always, then the other leading fields when set (writeOmiEvent's order). */
const leading = omiLeadingFields.map((field) => ({ code: textFieldCode[field], open: `<${field}>`, close: `</${field}>` }));
const trailing = omiTrailingFields.map((field) => ({ code: textFieldCode[field], open: `<${field}>`, close: `</${field}>` }));
const replacementCharacter = [0xef, 0xbf, 0xbd];
const utf8 = new TextEncoder();

export function omiEventListBytes(events: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  assert(events.length > 0, "a batch holds at least one event");
  // The usual batch: every event on this path, each read once, as it is written.
  const scan = new EventScan();
  const out = eventListOut(events);
  for (const bytes of events) {
    if (!scan.read(bytes)) return mixedEventList(events, scan);
    writeScanned(out, bytes, scan);
  }
  out.ascii("</event_list>");
  return out.finish();
}

/**
 * A batch with an event this path does not cover. Every event is read before any is written, as
 * the string path decodes all first: a malformed event fails with the decoder's error even when an
 * earlier decoded one would fail only while writing. Covered events are read again to be written.
 */
function mixedEventList(events: readonly Uint8Array[], scan: EventScan): Uint8Array<ArrayBuffer> {
  const decoded: Array<OprEvent | null> = events.map((bytes) => (scan.read(bytes) ? null : decodeOprEvent(bytes)));
  const out = eventListOut(events);
  for (let i = 0; i < events.length; i++) {
    const event = decoded[i]!;
    if (event !== null) {
      out.text(writeOmiEvent(event));
    } else {
      assert(scan.read(events[i]!), "an event read once reads the same again");
      writeScanned(out, events[i]!, scan);
    }
  }
  out.ascii("</event_list>");
  return out.finish();
}

/** An output sized for the batch (escaping rarely grows text much), the list's start tag written. */
function eventListOut(events: readonly Uint8Array[]): Utf8Out {
  let estimate = 64;
  for (const bytes of events) estimate += bytes.length * 2 + 160;
  const out = new Utf8Out(estimate);
  out.ascii(`<event_list xmlns="${omiNamespace}">`);
  return out;
}

function writeScanned(out: Utf8Out, bytes: Uint8Array, scan: EventScan): void {
  out.ascii("<event>");
  for (let i = 0; i < leading.length; i++) {
    const field = leading[i]!;
    // The title is written even when empty, as writeOmiEvent does.
    if (i === 0 || scan.length(field.code) > 0) out.element(field.open, bytes, scan.starts[field.code]!, scan.ends[field.code]!, field.close);
  }
  if (scan.hints.length > 0) {
    out.ascii("<related_ci_hints>");
    for (let i = 0; i < scan.hints.length; i += 2) out.element("<hint>", bytes, scan.hints[i]!, scan.hints[i + 1]!, "</hint>");
    out.ascii("</related_ci_hints>");
  }
  for (const field of trailing) {
    if (scan.length(field.code) > 0) out.element(field.open, bytes, scan.starts[field.code]!, scan.ends[field.code]!, field.close);
  }
  if (scan.attributes.length > 0) {
    out.ascii("<custom_attribute_list>");
    for (let i = 0; i < scan.attributes.length; i += 4) {
      out.ascii("<custom_attribute>");
      out.element("<name>", bytes, scan.attributes[i]!, scan.attributes[i + 1]!, "</name>");
      out.element("<value>", bytes, scan.attributes[i + 2]!, scan.attributes[i + 3]!, "</value>");
      out.ascii("</custom_attribute>");
    }
    out.ascii("</custom_attribute_list>");
  }
  if (scan.duplicateCount !== undefined) out.ascii(`<duplicate_count>${String(scan.duplicateCount)}</duplicate_count>`);
  out.ascii("</event>");
}

/** Where each field of one binary event lies; `read` says whether this path covers the event. */
class EventScan {
  readonly starts = new Array<number>(textCodesMax + 1).fill(0);
  readonly ends = new Array<number>(textCodesMax + 1).fill(0);
  /** [start, end] pairs. */
  hints: number[] = [];
  /** [nameStart, nameEnd, valueStart, valueEnd] quadruples. */
  attributes: number[] = [];
  duplicateCount: number | undefined = undefined;

  length(code: number): number {
    return this.ends[code]! - this.starts[code]!;
  }

  read(bytes: Uint8Array): boolean {
    this.starts.fill(0);
    this.ends.fill(0);
    this.hints = [];
    this.attributes = [];
    this.duplicateCount = undefined;
    let at = 0;
    for (let fields = 0; fields <= eventCodecLimits.fieldsMax; fields++) {
      if (at >= bytes.length) return false;
      const code = bytes[at++]!;
      if (code === endCode) return at === bytes.length;
      if (code === duplicateCountCode) {
        if (at + 8 > bytes.length) return false;
        const count = new DataView(bytes.buffer, bytes.byteOffset + at, 8).getFloat64(0);
        if (!Number.isSafeInteger(count) || count < 0) return false;
        this.duplicateCount = count;
        at += 8;
        continue;
      }
      const end = asciiTextEnd(bytes, at);
      if (end < 0) return false;
      if (code <= textCodesMax && isTextCode[code]) {
        this.starts[code] = at + 4;
        this.ends[code] = end;
      } else if (code === relatedCiHintCode) {
        this.hints.push(at + 4, end);
      } else if (code === customAttributeCode) {
        const valueEnd = asciiTextEnd(bytes, end);
        if (valueEnd < 0 || !this.addAttribute(bytes, [at + 4, end, end + 4, valueEnd])) return false;
        at = valueEnd;
        continue;
      } else {
        return false;
      }
      at = end;
    }
    return false;
  }

  /**
   * False for a name a decoded event would hold in another order (integer-like names come first
   * in a JavaScript object, so any name starting with a digit) or only once (a repeated name).
   */
  private addAttribute(bytes: Uint8Array, spans: readonly [number, number, number, number]): boolean {
    const [nameStart, nameEnd] = spans;
    if (this.attributes.length / 4 >= eventCodecLimits.bytesPathAttributesMax) return false;
    if (nameEnd > nameStart && bytes[nameStart]! >= 0x30 && bytes[nameStart]! <= 0x39) return false;
    for (let i = 0; i < this.attributes.length; i += 4) {
      if (sameBytes(bytes, this.attributes[i]!, this.attributes[i + 1]!, nameStart, nameEnd)) return false;
    }
    this.attributes.push(...spans);
    return true;
  }
}

/** The end of the length-prefixed text at `at` if it is all there and all ASCII, else -1. */
function asciiTextEnd(bytes: Uint8Array, at: number): number {
  if (at + 4 > bytes.length) return -1;
  const length = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
  const end = at + 4 + length;
  if (end > bytes.length) return -1;
  for (let i = at + 4; i < end; i++) if (bytes[i]! >= 0x80) return -1;
  return end;
}

function sameBytes(bytes: Uint8Array, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  for (let i = 0; i < aEnd - aStart; i++) if (bytes[aStart + i] !== bytes[bStart + i]) return false;
  return true;
}

/** A growing UTF-8 buffer. */
class Utf8Out {
  private buffer: Uint8Array<ArrayBuffer>;
  private length = 0;

  constructor(initialBytes: number) {
    this.buffer = new Uint8Array(initialBytes);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + bytes));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  /** Markup of our own: ASCII by construction. */
  ascii(text: string): void {
    this.reserve(text.length);
    for (let i = 0; i < text.length; i++) this.buffer[this.length++] = text.charCodeAt(i);
  }

  /** An event written by the string path. */
  text(text: string): void {
    this.reserve(text.length * 3);
    this.length += utf8.encodeInto(text, this.buffer.subarray(this.length)).written;
  }

  /** `open`, the ASCII bytes [start, end) escaped as omi-xml's escapeText does, `close`. */
  element(open: string, bytes: Uint8Array, start: number, end: number, close: string): void {
    this.ascii(open);
    // At most 5 bytes out per byte in ("&amp;", "&#13;").
    this.reserve((end - start) * 5);
    const buffer = this.buffer;
    let at = this.length;
    for (let i = start; i < end; i++) {
      const byte = bytes[i]!;
      if (byte >= 0x20 && byte !== 0x26 && byte !== 0x3c && byte !== 0x3e) buffer[at++] = byte;
      else at = escapeByte(buffer, at, byte);
    }
    assert(at <= buffer.length, "the reserve covers the worst case");
    this.length = at;
    this.ascii(close);
  }

  finish(): Uint8Array<ArrayBuffer> {
    return this.buffer.subarray(0, this.length);
  }
}

function escapeByte(buffer: Uint8Array, at: number, byte: number): number {
  const entity = byte === 0x26 ? "&amp;" : byte === 0x3c ? "&lt;" : byte === 0x3e ? "&gt;" : byte === 0x0d ? "&#13;" : null;
  if (entity !== null) {
    for (let i = 0; i < entity.length; i++) buffer[at++] = entity.charCodeAt(i);
    return at;
  }
  if (byte === 0x09 || byte === 0x0a) {
    buffer[at++] = byte;
    return at;
  }
  // Other C0 controls: XML 1.0 cannot carry them (escapeText writes U+FFFD).
  for (const b of replacementCharacter) buffer[at++] = b;
  return at;
}
