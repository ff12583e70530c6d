/**
 * @module The in-memory Raft log (etcd-io/raft `log.go` + `log_unstable.go` folded together): a
 * compaction point (index/term of the last entry folded into a snapshot), the entries after it as an
 * array with an offset, the commit and apply indexes, and the boundary between entries the shell has
 * made durable and those it has not yet (handed out in Ready.entries, marked stable in advance()).
 *
 * Invariants (asserted where they change):
 *   dummyIndex ≤ applied ≤ committed ≤ lastIndex, dummyIndex < stableIndex + 1 ≤ lastIndex + 1,
 *   entries[i].index = dummyIndex + 1 + i, terms never decrease along the log.
 */
import { assert } from "../assert.ts";
import type { Entry, Snapshot } from "./types.ts";

/** Returned by term() for an index that is compacted away or beyond the log. */
export const termUnavailable = -1;

export class RaftLog {
  /** Index/term of the entry just before entries[0]: the compaction point (0/0 for a fresh log). */
  dummyIndex = 0;
  dummyTerm = 0;
  entries: Entry[] = [];
  committed = 0;
  /** Highest index handed to the state machine and acknowledged by advance(). */
  applied = 0;
  /** Highest index the shell has made durable (thesis §10.2.1: only this counts for the leader). */
  stableIndex = 0;
  /** A snapshot received from the leader that the shell has not persisted yet. */
  pendingSnapshot: Snapshot | null = null;

  lastIndex(): number {
    return this.dummyIndex + this.entries.length;
  }

  firstIndex(): number {
    return this.dummyIndex + 1;
  }

  lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    return last === undefined ? this.dummyTerm : last.term;
  }

  /** Term of the entry at `index`, or termUnavailable if compacted away or not yet written. */
  term(index: number): number {
    if (index === this.dummyIndex) return this.dummyTerm;
    if (index < this.dummyIndex || index > this.lastIndex()) return termUnavailable;
    const entry = this.entries[index - this.dummyIndex - 1];
    assert(entry !== undefined && entry.index === index, "log entry index mismatch");
    return entry.term;
  }

  matchTerm(index: number, term: number): boolean {
    return term !== termUnavailable && this.term(index) === term;
  }

  /** Raft §5.4.1: is a candidate's log (lastTerm, lastIndex) at least as up-to-date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi) capped at `bytesMax` of data, but always at least one entry if any. */
  slice(lo: number, hi: number, bytesMax: number): Entry[] {
    assert(lo > this.dummyIndex, () => `slice ${lo} is compacted (first ${this.firstIndex()})`);
    assert(hi <= this.lastIndex() + 1 && lo <= hi, () => `slice [${lo}, ${hi}) out of bounds`);
    const start = lo - this.dummyIndex - 1;
    let end = start + 1;
    const endMax = hi - this.dummyIndex - 1;
    if (lo === hi) return [];
    let bytes = this.entries[start]?.data.length ?? 0;
    while (end < endMax) {
      bytes += this.entries[end]?.data.length ?? 0;
      if (bytes > bytesMax) break;
      end += 1;
    }
    return this.entries.slice(start, end);
  }

  /** Entries not yet durable (Ready.entries). The first may overwrite a stored suffix. */
  unstableEntries(): Entry[] {
    if (this.stableIndex >= this.lastIndex()) return [];
    return this.entries.slice(this.stableIndex - this.dummyIndex);
  }

  hasUnstable(): boolean {
    return this.stableIndex < this.lastIndex() || this.pendingSnapshot !== null;
  }

  /** Leader-side append of freshly proposed entries (a leader never overwrites its own log). */
  appendLeader(entry: Entry): void {
    assert(entry.index === this.lastIndex() + 1, "leader appends must be contiguous");
    assert(entry.term >= this.lastTerm(), "log terms never decrease");
    this.entries.push(entry);
  }

  /**
   * Follower-side append (etcd `maybeAppend`): if our log has (index, logTerm), write `entries`
   * after it, truncating from the first conflict (Raft §5.3). Returns the last new index, or -1 on
   * a failed consistency check.
   */
  maybeAppend(index: number, logTerm: number, commit: number, entries: readonly Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNew = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, () => `conflict at ${conflict} would overwrite committed ${this.committed}`);
      const first = entries[0];
      assert(first !== undefined && first.index === index + 1, "appended entries must follow index");
      this.truncateAndAppend(entries.slice(conflict - first.index));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** First index whose term differs from ours (or is beyond our log); 0 if all match. */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * Fast backtracking (etcd `findConflictByTerm`): the largest index ≤ `index` whose term is ≤
   * `term`, with that term. Lets a leader skip a whole term of divergent entries per round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    assert(index >= 0, "probe index must be non-negative");
    let at = Math.min(index, this.lastIndex());
    while (at > this.dummyIndex) {
      const t = this.term(at);
      if (t <= term) return { index: at, term: t };
      at -= 1;
    }
    assert(at <= this.dummyIndex, "backtracking stops at the compaction point");
    if (at === this.dummyIndex && this.dummyTerm <= term) return { index: at, term: this.dummyTerm };
    return { index: at, term: 0 };
  }

  private truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    assert(first !== undefined, "nothing to append");
    assert(first.index > this.dummyIndex && first.index <= this.lastIndex() + 1, "append leaves a gap");
    this.entries.length = first.index - this.dummyIndex - 1;
    for (const entry of entries) this.entries.push(entry);
    // Anything from the overwrite point on must be written again by the shell.
    if (this.stableIndex >= first.index) this.stableIndex = first.index - 1;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), () => `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  appliedTo(index: number): void {
    assert(index >= this.applied, () => `applied regresses ${this.applied} → ${index}`);
    assert(index <= this.committed, () => `applied ${index} beyond committed ${this.committed}`);
    this.applied = index;
  }

  /** advance(): the shell made entries up to (index, term) durable. Ignored if since overwritten. */
  stableTo(index: number, term: number): void {
    assert(index <= this.lastIndex() || this.term(index) === termUnavailable, "stable index in range");
    if (this.matchTerm(index, term) && index > this.stableIndex) this.stableIndex = index;
    assert(this.stableIndex <= this.lastIndex(), "stable index beyond the log");
  }

  /** Replace the log with a leader's snapshot (Raft §7): everything before it is superseded. */
  restore(snapshot: Snapshot): void {
    assert(snapshot.meta.index > this.committed, "restoring a snapshot behind our commit index");
    this.dummyIndex = snapshot.meta.index;
    this.dummyTerm = snapshot.meta.term;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.stableIndex = snapshot.meta.index;
    this.pendingSnapshot = snapshot;
  }

  /** Drop entries ≤ index (they live in a snapshot now). Never drops undurable entries. */
  compactTo(index: number): void {
    assert(index <= this.applied, () => `compacting ${index} beyond applied ${this.applied}`);
    assert(index <= this.stableIndex, "compacting entries not yet durable");
    if (index <= this.dummyIndex) return;
    const term = this.term(index);
    assert(term !== termUnavailable, "compaction point must exist");
    this.entries.splice(0, index - this.dummyIndex);
    this.dummyIndex = index;
    this.dummyTerm = term;
  }

  /** Entries to hand to the state machine next: (applied, committed], capped by bytes. */
  nextCommitted(bytesMax: number): Entry[] {
    if (this.pendingSnapshot !== null || this.committed <= this.applied) return [];
    return this.slice(this.applied + 1, this.committed + 1, bytesMax);
  }
}
