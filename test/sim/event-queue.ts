/**
 * @module The simulator's agenda: a binary min-heap of events ordered by (simulated time, insertion
 * sequence). The sequence number breaks ties deterministically, so two runs of one seed pop events
 * in exactly the same order. Message deliveries with random delays are what reorder packets.
 */
import { assert } from "../../server/assert.ts";

export interface Scheduled<T> {
  readonly time: number;
  readonly seq: number;
  readonly event: T;
}

export class EventQueue<T> {
  private readonly heap: Scheduled<T>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(time: number, event: T): void {
    assert(Number.isFinite(time) && time >= 0, "event time must be a finite non-negative number");
    const item = { time, seq: this.seq, event };
    this.seq += 1;
    this.heap.push(item);
    this.siftUp(this.heap.length - 1);
  }

  pop(): Scheduled<T> | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private less(i: number, j: number): boolean {
    const a = this.heap[i] as Scheduled<T>;
    const b = this.heap[j] as Scheduled<T>;
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i] as Scheduled<T>;
    this.heap[i] = this.heap[j] as Scheduled<T>;
    this.heap[j] = a;
  }

  private siftUp(start: number): void {
    let i = start;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(start: number): void {
    let i = start;
    const n = this.heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) return;
      const right = left + 1;
      const child = right < n && this.less(right, left) ? right : left;
      if (!this.less(child, i)) return;
      this.swap(child, i);
      i = child;
    }
  }
}
