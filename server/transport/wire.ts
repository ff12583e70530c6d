/**
 * @module Byte-level primitives under the peer-link codec: an exact-size writer and a bounds-checked
 * reader over one Uint8Array. Sizes are computed before writing (codec.ts), so a frame is a single
 * allocation and the writer never grows. Every read checks the remaining length first and throws
 * CodecError, so hostile input can never cause an out-of-bounds read or any other exception type.
 *
 * Integers are unsigned LEB128 varints up to 2^53 − 1 (at most 8 bytes): terms and indexes stay
 * exact JavaScript numbers, and the common small values take one or two bytes. Non-minimal
 * encodings are refused so every value has exactly one encoding.
 */
import { assert } from "../assert.ts";

/** Malformed, truncated, oversized or unsupported input. The only error decoding ever throws. */
export class CodecError extends Error {
  override readonly name = "CodecError";
}

const varintBytesMax = 8;
const textDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();

export function varintSize(value: number): number {
  assert(Number.isSafeInteger(value) && value >= 0, () => `varint out of range: ${value}`);
  let size = 1;
  // At most 8 iterations: 2^53 < 128^8.
  for (let rest = value; rest >= 0x80 && size < varintBytesMax; size++) rest = Math.floor(rest / 128);
  return size;
}

/** UTF-8 byte length of a JS string as TextEncoder will write it (lone surrogates become U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Length-prefixed string: varint byte length, then UTF-8. */
export function stringSize(text: string): number {
  const length = utf8Length(text);
  return varintSize(length) + length;
}

export function bytesSize(data: Uint8Array): number {
  return varintSize(data.length) + data.length;
}

export class Writer {
  readonly buffer: Uint8Array;
  private position = 0;

  constructor(size: number) {
    assert(Number.isSafeInteger(size) && size >= 0, "writer size must be a byte count");
    this.buffer = new Uint8Array(size);
  }

  get offset(): number {
    return this.position;
  }

  u8(value: number): void {
    assert(value >= 0 && value <= 0xff && Number.isInteger(value), () => `u8 out of range: ${value}`);
    assert(this.position < this.buffer.length, "writer overflow (size computed wrong)");
    this.buffer[this.position++] = value;
  }

  bool(value: boolean): void {
    this.u8(value ? 1 : 0);
  }

  varint(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, () => `varint out of range: ${value}`);
    const buffer = this.buffer;
    let rest = value;
    // Bounded: a safe integer has at most 8 groups of 7 bits.
    for (let i = 0; i < varintBytesMax && rest >= 0x80; i++) {
      buffer[this.position++] = (rest % 128) | 0x80;
      rest = Math.floor(rest / 128);
    }
    assert(this.position < buffer.length, "writer overflow (size computed wrong)");
    buffer[this.position++] = rest;
  }

  string(text: string, length: number = utf8Length(text)): void {
    this.varint(length);
    assert(this.position + length <= this.buffer.length, "writer overflow (size computed wrong)");
    if (length === text.length) {
      // All ASCII: a plain loop beats TextEncoder for the short node ids that dominate frames.
      for (let i = 0; i < length; i++) this.buffer[this.position + i] = text.charCodeAt(i);
    } else {
      const { written } = textEncoder.encodeInto(text, this.buffer.subarray(this.position, this.position + length));
      assert(written === length, "utf8Length disagrees with TextEncoder");
    }
    this.position += length;
  }

  bytes(data: Uint8Array): void {
    this.varint(data.length);
    this.raw(data);
  }

  /** Fixed-length bytes with no prefix (nonces, proofs: their length is part of the format). */
  raw(data: Uint8Array): void {
    assert(this.position + data.length <= this.buffer.length, "writer overflow (size computed wrong)");
    this.buffer.set(data, this.position);
    this.position += data.length;
  }

  finish(): Uint8Array {
    assert(this.position === this.buffer.length, () => `writer wrote ${this.position} of ${this.buffer.length} bytes (size computed wrong)`);
    return this.buffer;
  }
}

export class Reader {
  private position: number;

  constructor(
    private readonly buffer: Uint8Array,
    start = 0,
  ) {
    this.position = start;
  }

  get remaining(): number {
    return this.buffer.length - this.position;
  }

  private need(count: number, what: string): void {
    if (count > this.buffer.length - this.position) {
      throw new CodecError(`truncated: ${what} needs ${count} bytes at offset ${this.position}, ${this.remaining} left`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buffer[this.position++]!;
  }

  bool(what: string): boolean {
    const value = this.u8(what);
    if (value > 1) throw new CodecError(`${what}: boolean byte ${value} is neither 0 nor 1`);
    return value === 1;
  }

  varint(what: string): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < varintBytesMax; i++) {
      const byte = this.u8(what);
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0 && i > 0) throw new CodecError(`${what}: non-minimal varint`);
        if (result > Number.MAX_SAFE_INTEGER) throw new CodecError(`${what}: varint ${result} exceeds 2^53 - 1`);
        return result;
      }
      scale *= 128;
    }
    throw new CodecError(`${what}: varint longer than ${varintBytesMax} bytes`);
  }

  /** A varint used as a length or count: also bounded by `max` and by the bytes left. */
  length(what: string, max: number, minBytesEach = 1): number {
    const value = this.varint(what);
    if (value > max) throw new CodecError(`${what}: ${value} exceeds the limit of ${max}`);
    if (value * minBytesEach > this.remaining) {
      throw new CodecError(`truncated: ${what} of ${value} needs at least ${value * minBytesEach} bytes, ${this.remaining} left`);
    }
    return value;
  }

  string(what: string, bytesMax: number, bytesMin = 0): string {
    const length = this.length(`${what} length`, bytesMax);
    if (length < bytesMin) throw new CodecError(`${what}: ${length} bytes, at least ${bytesMin} required`);
    const view = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return decodeUtf8(view, what);
  }

  /** Length-prefixed bytes as a view into the frame (no copy). */
  bytes(what: string, bytesMax: number): Uint8Array {
    const length = this.length(`${what} length`, bytesMax);
    return this.raw(length, what);
  }

  raw(length: number, what: string): Uint8Array {
    this.need(length, what);
    const view = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return view;
  }

  expectEnd(what: string): void {
    if (this.remaining !== 0) throw new CodecError(`${what}: ${this.remaining} trailing bytes`);
  }
}

function decodeUtf8(view: Uint8Array, what: string): string {
  let ascii = true;
  for (let i = 0; i < view.length; i++) {
    if (view[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  // Node ids are short ASCII; fromCharCode on ≤ 1024 bytes is safe for the argument-count limit.
  if (ascii && view.length <= 1024) return String.fromCharCode.apply(null, view as unknown as number[]);
  try {
    return textDecoder.decode(view);
  } catch {
    throw new CodecError(`${what}: invalid UTF-8`);
  }
}
