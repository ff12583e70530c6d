/**
 * @module Promises parked until the Raft loop reaches a point: a proposal's log slot is applied, a
 * ReadIndex round completes, or the applied index passes a mark. Bounded by the core's own limits
 * (uncommitted bytes, pending reads); callers add their own time limits.
 */
import type { ApplyResult } from "../state/replicated-state.ts";
import { assert } from "../assert.ts";

interface Parked<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

function park<T>(): { promise: Promise<T>; parked: Parked<T> } {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  return { promise, parked: { resolve, reject } };
}

export class ProposalWaiters {
  private readonly byIndex = new Map<number, Parked<ApplyResult> & { term: number }>();

  /** `superseded`: the error for an earlier proposal at the same slot, which a later term overwrote. */
  add(index: number, term: number, superseded: () => Error): Promise<ApplyResult> {
    const earlier = this.byIndex.get(index);
    if (earlier !== undefined) {
      // A deposed leader's slot, re-proposed after it won again: the old entry can no longer commit.
      assert(earlier.term < term, () => `two proposals in one term at log slot ${index}`);
      earlier.reject(superseded());
    }
    const { promise, parked } = park<ApplyResult>();
    this.byIndex.set(index, { ...parked, term });
    return promise;
  }

  /**
   * The slot was applied: ours if the term matches, someone else's otherwise. Errors are built
   * lazily. Returns whether a waiter was answered.
   */
  settle(index: number, term: number, result: ApplyResult, lost: () => Error): boolean {
    const waiter = this.byIndex.get(index);
    if (waiter === undefined) return false;
    this.byIndex.delete(index);
    if (waiter.term === term) waiter.resolve(result);
    else waiter.reject(lost());
    return true;
  }

  rejectThrough(index: number, error: Error): void {
    for (const [slot, waiter] of this.byIndex) {
      if (slot <= index) {
        this.byIndex.delete(slot);
        waiter.reject(error);
      }
    }
  }

  rejectAll(error: Error): void {
    this.rejectThrough(Number.MAX_SAFE_INTEGER, error);
  }
}

export class ReadWaiters {
  private readonly byCtx = new Map<string, Parked<number>>();

  add(ctx: string): Promise<number> {
    const { promise, parked } = park<number>();
    this.byCtx.set(ctx, parked);
    return promise;
  }

  /** Returns whether a waiter was answered. */
  resolve(ctx: string, index: number): boolean {
    const waiter = this.byCtx.get(ctx);
    if (waiter === undefined) return false;
    waiter.resolve(index);
    this.byCtx.delete(ctx);
    return true;
  }

  rejectAll(error: Error): void {
    for (const waiter of this.byCtx.values()) waiter.reject(error);
    this.byCtx.clear();
  }
}

export class AppliedWaiters {
  /** Kept sorted by index, so resolving is a prefix scan. */
  private readonly queue: Array<Parked<void> & { index: number }> = [];

  add(index: number): Promise<void> {
    const { promise, parked } = park<void>();
    let at = this.queue.length;
    while (at > 0 && this.queue[at - 1]!.index > index) at--;
    this.queue.splice(at, 0, { ...parked, index });
    return promise;
  }

  /** Returns how many waiters were answered. */
  resolveThrough(applied: number): number {
    let count = 0;
    while (count < this.queue.length && this.queue[count]!.index <= applied) this.queue[count++]!.resolve();
    if (count > 0) this.queue.splice(0, count);
    return count;
  }

  rejectAll(error: Error): void {
    for (const waiter of this.queue.splice(0)) waiter.reject(error);
  }
}
