/**
 * @module The bounded per-peer queue of Raft messages waiting to be flushed. Bounded in messages and
 * in encoded bytes; when either bound would be exceeded the offered message is dropped and counted.
 * Dropping is safe for Raft (the protocol tolerates loss and retransmits), unbounded memory is not.
 * Tail drop (the new message goes) matches etcd's full-channel behaviour and keeps FIFO order.
 */
import { assert } from "../assert.ts";
import type { Message } from "../raft/types.ts";

export interface SendQueueLimits {
  readonly messagesMax: number;
  readonly bytesMax: number;
}

export interface Batch {
  readonly messages: Message[];
  readonly bytes: number;
}

export class SendQueue {
  private messages: Message[] = [];
  private sizes: number[] = [];
  /** Index of the oldest queued message; the arrays are compacted when the head passes half. */
  private head = 0;
  private queuedBytes = 0;
  private droppedCount = 0;

  constructor(private readonly limits: SendQueueLimits) {
    assert(limits.messagesMax >= 1 && limits.bytesMax >= 1, "queue limits must admit a message");
  }

  get count(): number {
    return this.messages.length - this.head;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  /** Counts drops that happened outside the queue (socket refused a frame, message too large). */
  countDropped(messagesCount: number): void {
    assert(messagesCount >= 0, "drop count");
    this.droppedCount += messagesCount;
  }

  /** Returns whether the message was queued (false: dropped and counted). */
  offer(message: Message, bytes: number): boolean {
    assert(bytes > 0, "a message has a size");
    if (this.count >= this.limits.messagesMax || this.queuedBytes + bytes > this.limits.bytesMax) {
      this.droppedCount++;
      return false;
    }
    this.messages.push(message);
    this.sizes.push(bytes);
    this.queuedBytes += bytes;
    return true;
  }

  /**
   * Removes the oldest messages totalling about `bytesTarget` (always at least one, so a message
   * larger than the target still goes, alone) and at most `messagesMax`.
   */
  take(bytesTarget: number, messagesMax: number): Batch {
    assert(messagesMax >= 1, "a batch holds at least one message");
    const start = this.head;
    let end = start;
    let bytes = 0;
    const limit = Math.min(this.messages.length, start + messagesMax);
    while (end < limit && (end === start || bytes + this.sizes[end]! <= bytesTarget)) bytes += this.sizes[end++]!;
    const batch = this.messages.slice(start, end);
    this.head = end;
    this.queuedBytes -= bytes;
    this.compact();
    assert(this.queuedBytes >= 0 && (this.count > 0 || this.queuedBytes === 0), "queued bytes track the messages");
    return { messages: batch, bytes };
  }

  clear(): number {
    const count = this.count;
    this.messages = [];
    this.sizes = [];
    this.head = 0;
    this.queuedBytes = 0;
    return count;
  }

  private compact(): void {
    if (this.head === this.messages.length) {
      this.messages = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.messages.length) {
      this.messages = this.messages.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}
