/**
 * @module The shell-facing API of the Raft core (etcd-io/raft `rawnode.go`): feed it ticks,
 * messages and requests; collect a Ready; persist, send, apply; then advance(). RawNode does the
 * Ready bookkeeping (what changed since the last Ready, what the shell has made durable and
 * applied); the protocol itself is in raft.ts.
 *
 * One Ready at a time: ready() hands out a batch, and until advance() acknowledges it hasReady()
 * says false and ready() asserts. step()/tick()/propose() may still be called in between (the shell
 * may await its fsync); their output simply lands in the next Ready.
 *
 * Ready.snapshot (from a leader) replaces the shell's whole stored log: entries after its index may
 * belong to a conflicting history, so keep none of them (etcd ApplySnapshot); Ready.entries of the
 * same Ready follow the snapshot. committedEntries stay empty until the snapshot is advanced.
 */
import { assert } from "../assert.ts";
import { raftTuning } from "../constants.ts";
import { decodeConfChange } from "./conf-change.ts";
import { Raft } from "./raft.ts";
import type {
  ConfChange,
  Entry,
  HardState,
  Message,
  NodeId,
  PeerProgress,
  ProposeResult,
  RaftOptions,
  RaftStatus,
  Ready,
  RequestResult,
  Snapshot,
  SoftState,
} from "./types.ts";

/** What the outstanding Ready handed out, so advance() knows what became durable / applied. */
interface Handed {
  readonly hardState: HardState | null;
  readonly lastEntry: Entry | null;
  readonly committedEntries: readonly Entry[];
  readonly snapshot: Snapshot | null;
}

const none: readonly never[] = [];

export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  /** The last HardState handed out (or persisted before a restart). */
  private prevHardState: HardState;
  private handed: Handed | null = null;

  constructor(options: RaftOptions) {
    this.raft = new Raft(options);
    this.prevSoftState = { leader: null, role: "follower" };
    this.prevHardState = options.persisted?.hardState ?? { term: 0, votedFor: null, commit: 0 };
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Message): void {
    this.raft.step(message);
  }

  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose(data);
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    return this.raft.proposeConfChange(change);
  }

  readIndex(requestCtx: string): RequestResult {
    return this.raft.readIndex(requestCtx);
  }

  transferLeadership(to: NodeId): RequestResult {
    return this.raft.transferLeadership(to);
  }

  compact(snapshot: { index: number; data: Uint8Array }): void {
    this.raft.compact(snapshot.index, snapshot.data);
  }

  /**
   * The latest snapshot the core holds (from compact() or received from a leader), with the meta
   * (index, term, confState) the shell needs to persist it; null if none. Addition to the issue's
   * API: saves the shell re-deriving term and configuration.
   */
  lastSnapshot(): Snapshot | null {
    return this.raft.snapshot;
  }

  reportUnreachable(peer: NodeId): void {
    this.raft.reportUnreachable(peer);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  private hardStateChanged(): boolean {
    const r = this.raft;
    const prev = this.prevHardState;
    const votedFor = r.bugs.forgetVote === true ? null : r.votedFor;
    return prev.term !== r.term || prev.votedFor !== votedFor || prev.commit !== r.log.committed;
  }

  hasReady(): boolean {
    if (this.handed !== null) return false;
    const r = this.raft;
    const soft = this.prevSoftState;
    if (r.needsBroadcast || r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (soft.leader !== r.lead || soft.role !== r.role || this.hardStateChanged()) return true;
    if (r.log.hasUnstable()) return true;
    return r.log.pendingSnapshot === null && r.log.committed > r.log.applied;
  }

  ready(): Ready {
    assert(this.handed === null, "ready() again before advance()");
    const r = this.raft;
    if (r.needsBroadcast) r.bcastAppend();
    const soft = this.softState();
    const softChanged = soft.leader !== this.prevSoftState.leader || soft.role !== this.prevSoftState.role;
    if (softChanged) this.prevSoftState = soft;
    const hardState = this.hardStateChanged()
      ? { term: r.term, votedFor: r.bugs.forgetVote === true ? null : r.votedFor, commit: r.log.committed }
      : null;
    const entries = r.log.unstableEntries();
    const committedEntries = r.log.nextCommitted(raftTuning.applyBytesMax);
    const messages = r.msgs;
    r.msgs = [];
    const readStates = r.readStates.length > 0 ? r.readStates : none;
    if (r.readStates.length > 0) r.readStates = [];
    const snapshot = r.log.pendingSnapshot;
    this.handed = { hardState, lastEntry: entries[entries.length - 1] ?? null, committedEntries, snapshot };
    if (hardState !== null) this.prevHardState = hardState;
    const lastCommitted = committedEntries[committedEntries.length - 1];
    assert(lastCommitted === undefined || lastCommitted.index <= r.log.committed, "only committed entries are applied");
    return { softState: softChanged ? soft : null, hardState, snapshot, entries, messages, committedEntries, readStates };
  }

  advance(): void {
    const handed = this.handed;
    assert(handed !== null, "advance() without a ready()");
    this.handed = null;
    const r = this.raft;
    const log = r.log;
    if (handed.snapshot !== null && log.pendingSnapshot === handed.snapshot) {
      log.pendingSnapshot = null;
      log.appliedTo(handed.snapshot.meta.index);
    }
    if (handed.lastEntry !== null) log.stableTo(handed.lastEntry.index, handed.lastEntry.term);
    const last = handed.committedEntries[handed.committedEntries.length - 1];
    if (last !== undefined && last.index > log.applied) {
      for (const entry of handed.committedEntries) {
        // Entries at or below confIndex were superseded by a snapshot restored meanwhile.
        if (entry.type === "conf-change" && entry.index > r.confIndex) {
          r.applyConfChange(decodeConfChange(entry.data), entry.index);
        }
      }
      log.appliedTo(last.index);
    }
    r.leaderPersisted();
    assert(log.applied <= log.committed, "applied ≤ committed");
  }

  status(): RaftStatus {
    const r = this.raft;
    const progress = new Map<NodeId, PeerProgress>();
    if (r.role === "leader") for (const [id, pr] of r.prs) progress.set(id, pr.toPeerProgress());
    return {
      id: r.id,
      role: r.role,
      leader: r.lead,
      term: r.term,
      votedFor: r.votedFor,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: { voters: [...r.voters], learners: [...r.learners] },
      progress,
    };
  }
}
