/**
 * @module One simulated server: a RawNode plus the shell around it, following the contract in
 * server/raft/types.ts exactly: per Ready persist (snapshot, entries, hard state) → send messages →
 * apply committed entries → advance(). Every durable write and every apply is shown to the checkers
 * first. A crash can be armed to strike inside the next Ready (before persisting, after persisting,
 * after sending, or midway through applying), which is how unsynced writes get lost.
 */
import { assert, unreachable } from "../../server/assert.ts";
import { seededRng } from "../../server/raft/prng.ts";
import { RawNode } from "../../server/raft/raw-node.ts";
import type { Entry, Message, NodeId, RaftOptions, RaftStatus, ReadState, Ready } from "../../server/raft/types.ts";
import { checkApplyBatch, checkCommit, violated, type SafetyChecker } from "./checkers.ts";
import { deriveSeed } from "./prng.ts";
import type { Scenario } from "./scenario.ts";
import { StateMachine, entryCode } from "./state-machine.ts";
import { DurableStorage, noTerm } from "./storage.ts";

export type CrashPoint = "before-persist" | "after-persist" | "after-send" | "mid-apply";
export const crashPoints: readonly CrashPoint[] = ["before-persist", "after-persist", "after-send", "mid-apply"];

/** Readies drained after one input; a core that keeps producing more is looping. */
const readiesPerInputMax = 64;

export interface HarnessHooks {
  readonly checker: SafetyChecker;
  send(message: Message): void;
  applied(node: NodeHarness, entry: Entry, code: number): void;
  readState(node: NodeHarness, readState: ReadState): void;
  crashed(node: NodeHarness): void;
  installedSnapshot(node: NodeHarness): void;
}

export class NodeHarness {
  readonly storage = new DurableStorage();
  raw: RawNode | null = null;
  incarnation = 0;
  /** Simulated time until which the node neither ticks nor receives (a GC-like stall). */
  pausedUntil = 0;
  crashArmed: CrashPoint | null = null;
  /** Entries to apply before a "mid-apply" crash strikes. */
  crashAfterApplies = 0;
  /** Highest commit index this incarnation has made durable. */
  private commitSeen = 0;
  /** Role and term as of the last observe(). */
  role: RaftStatus["role"] = "follower";
  term = 0;

  constructor(
    readonly id: NodeId,
    private readonly scenario: Scenario,
    /** Founders bootstrap with these voters; joiners start empty and learn from the leader. */
    private readonly bootstrapVoters: readonly NodeId[] | null,
    private readonly hooks: HarnessHooks,
  ) {}

  get alive(): boolean {
    return this.raw !== null;
  }

  get isLeader(): boolean {
    return this.raw !== null && this.role === "leader";
  }

  get applied(): number {
    return this.storage.sm.applied;
  }

  /** Start (or restart from durable storage: a new RawNode, as after a process restart). */
  start(): void {
    assert(this.raw === null, `${this.id} is already running`);
    this.incarnation += 1;
    const s = this.scenario;
    const base: RaftOptions = {
      id: this.id,
      electionTicks: s.electionTicks,
      heartbeatTicks: s.heartbeatTicks,
      preVote: s.preVote,
      checkQuorum: s.checkQuorum,
      limits: s.limits,
      rng: seededRng(deriveSeed(s.seed, `${this.id}#${this.incarnation}`)),
      bugs: s.bugs,
    };
    let options: RaftOptions = base;
    if (this.storage.written) options = { ...base, persisted: this.storage.persisted() };
    else if (this.bootstrapVoters !== null) options = { ...base, bootstrapVoters: this.bootstrapVoters };
    this.raw = new RawNode(options);
    this.commitSeen = this.storage.hardState.commit;
    this.crashArmed = null;
    this.role = "follower";
    this.drain();
  }

  crash(): void {
    this.raw = null;
    this.crashArmed = null;
    this.role = "follower";
    this.hooks.checker.observeDown(this.id);
    this.hooks.crashed(this);
  }

  /** Run the Ready loop until the core is quiet (or the node crashed in it). */
  drain(): void {
    for (let i = 0; i < readiesPerInputMax; i += 1) {
      const raw = this.raw;
      if (raw === null || !raw.hasReady()) return;
      this.handleReady(raw, raw.ready());
    }
    violated("liveness", `${this.id} still has a Ready after ${readiesPerInputMax} rounds`);
  }

  /**
   * After every step that touched this node: role and term go to the election checkers. Both come
   * from the Readies (softState reports every role change, hardState every term change), so this
   * costs no status() call.
   */
  observe(): void {
    if (this.raw === null) return;
    this.term = this.storage.hardState.term;
    this.hooks.checker.observeRole(this.id, this.term, this.role === "leader", this.storage);
  }

  status(): RaftStatus | null {
    return this.raw === null ? null : this.raw.status();
  }

  /** Shell-initiated snapshot at the applied index, then log compaction in core and storage. */
  compact(): boolean {
    const raw = this.raw;
    const applied = this.applied;
    if (raw === null || applied <= this.storage.snapshotIndex) return false;
    const data = this.storage.sm.encode();
    raw.compact({ index: applied, data });
    const term = this.storage.termAt(applied);
    assert(term !== noTerm, `${this.id}: applied entry ${applied} missing from the durable log`);
    this.storage.compact({ index: applied, term, confState: raw.status().confState }, data);
    this.drain();
    return true;
  }

  private handleReady(raw: RawNode, ready: Ready): void {
    const crash = this.crashArmed;
    if (crash === "before-persist") return this.crash();
    this.persist(ready);
    if (crash === "after-persist") return this.crash();
    for (const message of ready.messages) this.hooks.send(message);
    if (crash === "after-send") return this.crash();
    const applyCount = crash === "mid-apply" ? Math.min(this.crashAfterApplies, ready.committedEntries.length) : ready.committedEntries.length;
    this.apply(ready.committedEntries, applyCount);
    if (crash === "mid-apply") return this.crash();
    for (const readState of ready.readStates) this.hooks.readState(this, readState);
    raw.advance();
    if (crash !== null) unreachable(crash);
  }

  /** One atomic, fsynced write: snapshot, entries, hard state (each checked before it lands). */
  private persist(ready: Ready): void {
    const checker = this.hooks.checker;
    const storage = this.storage;
    const term = ready.hardState?.term ?? storage.hardState.term;
    if (ready.softState !== null) this.role = ready.softState.role;
    if (ready.snapshot !== null) {
      const snapshot = ready.snapshot;
      checker.checkWrite(this.id, term, 1);
      const sm = StateMachine.decode(snapshot.data);
      if (sm.applied !== snapshot.meta.index) {
        violated("state-machine-safety", `${this.id} got snapshot ${snapshot.meta.index} whose image ends at ${sm.applied}`);
      }
      if (snapshot.meta.index < storage.sm.applied) {
        violated("apply-order", `${this.id} restores snapshot ${snapshot.meta.index} behind applied ${storage.sm.applied}`);
      }
      checker.checkImage(this.id, sm, term);
      storage.installSnapshot(snapshot, sm);
      this.hooks.installedSnapshot(this);
    }
    const first = ready.entries[0];
    if (first !== undefined) {
      checker.checkWrite(this.id, term, first.index);
      let prevTerm = storage.termAt(first.index - 1);
      for (const entry of ready.entries) {
        checker.recordEntry(this.id, entry.index, entry.term, entryCode(entry), prevTerm);
        prevTerm = entry.term;
      }
      storage.append(ready.entries);
    }
    if (ready.hardState !== null) storage.setHardState(ready.hardState);
    checkCommit(this.id, this.commitSeen, storage.hardState.commit, storage.lastIndex());
    this.commitSeen = storage.hardState.commit;
  }

  private apply(entries: readonly Entry[], count: number): void {
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first === undefined || last === undefined) return;
    const storage = this.storage;
    checkApplyBatch(this.id, storage.sm.applied, first.index, last.index, storage.hardState.commit);
    for (let i = 0; i < count; i += 1) {
      const entry = entries[i] as Entry;
      const durableTerm = storage.termAt(entry.index);
      if (durableTerm !== entry.term) {
        violated("apply-order", `${this.id} applies entry ${entry.index} (term ${entry.term}) but its durable log has ${durableTerm}`);
      }
      const code = entryCode(entry);
      storage.sm.apply(entry.index, entry.term, code);
      this.hooks.checker.recordApplied(this.id, entry.index, entry.term, code, storage.hardState.term);
      this.hooks.applied(this, entry, code);
    }
  }
}
