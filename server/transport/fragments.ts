/**
 * @module Frames larger than one WebSocket message (snapshots, huge forwarded batches) travel as
 * `fragment` frames. Pure pieces, no I/O: `OutgoingFragments` slices queued large frames in order,
 * `Reassembly` puts one frame back together and checks every slice against the one before, so a
 * peer can neither grow the buffer past frameBytesMax nor splice two frames together.
 */
import { assert } from "../assert.ts";
import { transportLimits } from "../constants.ts";
import { CodecError, encodeFrame, type Frame } from "./codec.ts";

type Fragment = Extract<Frame, { type: "fragment" }>;

/** Encoded large frames waiting to go out, and how far the first one has gone. */
export class OutgoingFragments {
  private readonly frames: Uint8Array[] = [];
  private offset = 0;
  private queuedBytes = 0;

  constructor(private readonly chunkBytes: number = transportLimits.messageBytesMax) {
    assert(chunkBytes > 0, "fragments carry bytes");
  }

  get pending(): number {
    return this.frames.length;
  }

  /**
   * False when the frame does not fit: fragmentedFramesMax frames, or frameBytesMax bytes in all,
   * are already waiting (the caller counts a drop). The byte bound keeps a leader that re-sends a
   * snapshot while the last one is still in flight from holding several copies.
   */
  add(encoded: Uint8Array): boolean {
    assert(encoded.length > this.chunkBytes && encoded.length <= transportLimits.frameBytesMax, () => `only large frames are fragmented (${encoded.length} bytes)`);
    if (this.frames.length >= transportLimits.fragmentedFramesMax) return false;
    if (this.queuedBytes + encoded.length > transportLimits.frameBytesMax) return false;
    this.frames.push(encoded);
    this.queuedBytes += encoded.length;
    return true;
  }

  /** The next fragment, encoded, or null when nothing waits. */
  next(): Uint8Array | null {
    const frame = this.frames[0];
    if (frame === undefined) return null;
    const end = Math.min(frame.length, this.offset + this.chunkBytes);
    const encoded = encodeFrame({ type: "fragment", totalBytes: frame.length, offset: this.offset, chunk: frame.subarray(this.offset, end) });
    this.offset = end;
    if (end === frame.length) {
      this.frames.shift();
      this.offset = 0;
      this.queuedBytes -= frame.length;
    }
    return encoded;
  }

  clear(): void {
    this.frames.length = 0;
    this.offset = 0;
    this.queuedBytes = 0;
  }
}

/** Rebuilds one large frame at a time from its fragments. */
export class Reassembly {
  private buffer: Uint8Array | null = null;
  private received = 0;

  /** The whole encoded frame once its last fragment arrived, else null. Throws CodecError on misuse. */
  accept(fragment: Fragment): Uint8Array | null {
    const { totalBytes, offset, chunk } = fragment;
    if (chunk.length === 0) throw new CodecError("empty fragment");
    if (this.buffer === null) {
      if (offset !== 0) throw new CodecError(`fragment at offset ${offset} with no frame begun`);
      if (totalBytes > transportLimits.frameBytesMax) throw new CodecError(`fragmented frame of ${totalBytes} bytes exceeds the limit ${transportLimits.frameBytesMax}`);
      if (totalBytes <= chunk.length) throw new CodecError(`fragmented frame of ${totalBytes} bytes fits one message`);
      this.buffer = new Uint8Array(totalBytes);
      this.received = 0;
    } else if (totalBytes !== this.buffer.length || offset !== this.received) {
      throw new CodecError(`fragment ${offset}/${totalBytes} does not continue ${this.received}/${this.buffer.length}`);
    }
    if (offset + chunk.length > totalBytes) throw new CodecError(`fragment ends past its frame (${offset + chunk.length} > ${totalBytes})`);
    this.buffer.set(chunk, offset);
    this.received += chunk.length;
    if (this.received < totalBytes) return null;
    const whole = this.buffer;
    this.buffer = null;
    this.received = 0;
    return whole;
  }
}
