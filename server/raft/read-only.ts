/**
 * @module The leader's ReadIndex queue (thesis §6.4; etcd-io/raft `read_only.go`). A read records
 * the commit index when it arrives, then waits for a heartbeat round in which a quorum of voters
 * confirms this node is still leader; that confirmation also releases every earlier read. Reads
 * that arrive before the leader committed an entry of its own term wait in `awaitingCommit`, since
 * until then its commit index may lag the true one.
 */
import { assert } from "../assert.ts";
import { hasQuorum } from "./quorum.ts";
import type { NodeId, ReadState } from "./types.ts";

interface PendingRead {
  readonly requestCtx: string;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

export class ReadOnly {
  private pending: PendingRead[] = [];
  private readonly byCtx = new Map<string, PendingRead>();
  /** Contexts waiting for the leader's first commit in its term (thesis §6.4 step 1). */
  awaitingCommit: string[] = [];

  count(): number {
    return this.pending.length + this.awaitingCommit.length;
  }

  has(requestCtx: string): boolean {
    return this.byCtx.has(requestCtx) || this.awaitingCommit.includes(requestCtx);
  }

  /** The context the next heartbeat round confirms: acking it releases every pending read. */
  lastCtx(): string | null {
    return this.pending[this.pending.length - 1]?.requestCtx ?? null;
  }

  add(requestCtx: string, index: number, self: NodeId): void {
    assert(!this.has(requestCtx), "read contexts are unique");
    const last = this.pending[this.pending.length - 1];
    assert(last === undefined || last.index <= index, "read indexes never go back");
    const read: PendingRead = { requestCtx, index, acks: new Set([self]) };
    this.pending.push(read);
    this.byCtx.set(requestCtx, read);
  }

  /** `from` confirmed our leadership for `ctx`; returns the reads this releases, in order. */
  ack(ctx: string, from: NodeId, voters: readonly NodeId[]): ReadState[] {
    const read = this.byCtx.get(ctx);
    if (read === undefined) return [];
    read.acks.add(from);
    if (!hasQuorum(voters, (id) => read.acks.has(id))) return [];
    const released: ReadState[] = [];
    for (const pending of this.pending) {
      this.byCtx.delete(pending.requestCtx);
      released.push({ index: pending.index, requestCtx: pending.requestCtx });
      if (pending === read) break;
    }
    this.pending = this.pending.slice(released.length);
    assert(!this.byCtx.has(ctx), "acknowledged read released");
    return released;
  }

  reset(): void {
    this.pending = [];
    this.byCtx.clear();
    this.awaitingCommit = [];
  }
}
