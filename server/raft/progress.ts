/**
 * @module The leader's view of one follower (etcd-io/raft `tracker/progress.go`, `inflights.go`).
 *
 * - probe: we do not know where the follower's log ends; send one `app` per heartbeat round and
 *   wait for the answer (fast backtracking on rejection, Raft §5.3).
 * - replicate: the follower is in step; stream `app` optimistically (next = last sent + 1),
 *   bounded by the in-flight window (messages and bytes) so a slow follower cannot swamp memory.
 * - snapshot: the entries it needs are compacted away; a `snap` is in flight, wait for its ack.
 */
import { assert, unreachable } from "../assert.ts";
import type { NodeId, PeerProgress, ProgressState } from "./types.ts";

/** A ring buffer of (last index, bytes) per unacknowledged `app` (etcd `Inflights`). */
export class Inflights {
  private readonly lastIndexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  count = 0;
  bytes = 0;

  constructor(
    readonly messagesMax: number,
    readonly bytesMax: number,
  ) {
    assert(messagesMax >= 1, "in-flight window needs room for one message");
    assert(bytesMax >= 1, "in-flight byte window must be positive");
    this.lastIndexes = new Float64Array(messagesMax);
    this.sizes = new Float64Array(messagesMax);
  }

  full(): boolean {
    return this.count === this.messagesMax || this.bytes >= this.bytesMax;
  }

  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), "adding to a full in-flight window");
    if (this.count > 0) {
      const prev = this.lastIndexes[(this.start + this.count - 1) % this.messagesMax] as number;
      assert(lastIndex > prev, "in-flight appends must be ordered");
    }
    const slot = (this.start + this.count) % this.messagesMax;
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.count += 1;
    this.bytes += bytes;
  }

  /** The follower acknowledged everything up to `index`: free those messages. */
  freeLE(index: number): void {
    while (this.count > 0 && (this.lastIndexes[this.start] as number) <= index) this.freeFirstOne();
  }

  /** A heartbeat came back while the window is full: make room for one probe-like message. */
  freeFirstOne(): void {
    assert(this.count > 0, "freeing from an empty window");
    this.bytes -= this.sizes[this.start] as number;
    this.start = (this.start + 1) % this.messagesMax;
    this.count -= 1;
    assert(this.bytes >= 0, "in-flight bytes went negative");
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

export class Progress {
  /** Highest index known to be replicated on the follower (thesis: matchIndex). */
  match = 0;
  /** Next index to send (thesis: nextIndex). Invariant: match < next. */
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an `app` was sent and we wait for its answer before sending another. */
  probeSent = false;
  /** In snapshot state: the snapshot's index, and election timeouts since it was sent (retry if lost). */
  pendingSnapshot = 0;
  snapshotElections = 0;
  /** Heard from within the current election timeout (CheckQuorum, thesis §6.2). */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(
    readonly id: NodeId,
    next: number,
    public isLearner: boolean,
    window: { messagesMax: number; bytesMax: number },
  ) {
    assert(next >= 1, "next index starts at 1");
    this.next = next;
    this.inflights = new Inflights(window.messagesMax, window.bytesMax);
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotElections = 0;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // Leaving snapshot state: the follower has at least the snapshot if it acked, else retry it.
    const next = this.state === "snapshot" ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.resetState("probe");
    this.next = next;
    assert(this.match < this.next, "probe keeps match < next");
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    assert(snapshotIndex > this.match, "sending a snapshot the follower already covers");
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** An `app` carrying `entryCount` entries ending at `lastIndex` left for this follower. */
  sentEntries(lastIndex: number, entryCount: number, bytes: number): void {
    switch (this.state) {
      case "replicate":
        if (entryCount > 0) {
          this.next = lastIndex + 1;
          this.inflights.add(lastIndex, bytes);
        }
        break;
      case "probe":
        this.probeSent = true;
        break;
      case "snapshot":
        assert(false, "no appends in snapshot state");
        break;
      default:
        unreachable(this.state);
    }
    assert(this.match < this.next, "sending keeps match < next");
  }

  /** A successful append ack up to `index`. Returns whether it told us something new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    assert(this.match < this.next, "update keeps match < next");
    return updated;
  }

  /**
   * A rejected append of `rejected` with the follower's hint (etcd `MaybeDecrTo`). Returns false
   * if the rejection is stale (an answer to an older message).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    assert(this.next >= 1 && this.match < this.next, "backtracking keeps match < next");
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
      default:
        return unreachable(this.state);
    }
  }

  toPeerProgress(): PeerProgress {
    return { match: this.match, next: this.next, state: this.state, recentActive: this.recentActive, isLearner: this.isLearner };
  }
}
