/**
 * @module Length-prefixed binary encoding shared by the state machine's formats (commands,
 * snapshots). Big-endian u32 lengths; f64 for log indexes (exact up to 2^53). The reader never reads
 * past its input: every shortfall is a `BinaryDecodeError`, never an out-of-bounds read.
 */

export class BinaryDecodeError extends Error {
  override readonly name = "BinaryDecodeError";
}

const utf8 = new TextEncoder();
/** Up to this length, text is tried as ASCII first (see ByteWriter.text). */
const asciiCopyCharsMax = 256;
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;

  constructor(initialBytes = 256) {
    this.buffer = new Uint8Array(initialBytes);
    this.view = new DataView(this.buffer.buffer);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + bytes));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
    return this;
  }

  f64(value: number): this {
    this.reserve(8);
    this.view.setFloat64(this.length, value);
    this.length += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.u32(value.length);
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  /**
   * UTF-8 straight into the buffer (no temporary array); a UTF-16 unit is at most 3 UTF-8 bytes.
   * Short ASCII text, most of what events and keys hold, is copied unit by unit: the view that
   * encodeInto needs cost more than the copy (an event has a dozen such fields).
   */
  text(value: string): this {
    this.reserve(4 + value.length * 3);
    const start = this.length + 4;
    if (value.length <= asciiCopyCharsMax) {
      let i = 0;
      for (; i < value.length; i++) {
        const unit = value.charCodeAt(i);
        if (unit >= 0x80) break;
        this.buffer[start + i] = unit;
      }
      if (i === value.length) {
        this.view.setUint32(this.length, i);
        this.length = start + i;
        return this;
      }
    }
    const { written } = utf8.encodeInto(value, this.buffer.subarray(start));
    this.view.setUint32(this.length, written);
    this.length = start + written;
    return this;
  }

  /** Bytes written so far. */
  get size(): number {
    return this.length;
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

export class ByteReader {
  private readonly view: DataView;
  offset = 0;

  constructor(private readonly data: Uint8Array) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private need(bytes: number, what: string): void {
    if (this.offset + bytes > this.data.length) throw new BinaryDecodeError(`${what} truncated at byte ${this.offset}`);
  }

  u8(what = "byte"): number {
    this.need(1, what);
    return this.data[this.offset++]!;
  }

  u32(what = "u32"): number {
    this.need(4, what);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  f64(what = "f64"): number {
    this.need(8, what);
    const value = this.view.getFloat64(this.offset);
    this.offset += 8;
    return value;
  }

  /** A view into the input, not a copy. */
  bytes(what = "bytes"): Uint8Array {
    const length = this.u32(what);
    this.need(length, what);
    const out = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  text(what = "text"): string {
    const bytes = this.bytes(what);
    try {
      return fromUtf8.decode(bytes);
    } catch {
      throw new BinaryDecodeError(`${what} is not UTF-8`);
    }
  }

  get remaining(): number {
    return this.data.length - this.offset;
  }

  end(what: string): void {
    if (this.remaining !== 0) throw new BinaryDecodeError(`${this.remaining} trailing bytes after ${what}`);
  }
}
