/**
 * @module The imperative shell around the Raft core: a ticker, the Ready loop and the apply loop.
 *
 * One Ready = at most one libSQL transaction: snapshot restore, new entries and hard state (fsynced
 * when it holds entries, a snapshot or a new term or vote), plus, now and then, the state machine's
 * tables with the applied index they cover. A leader's appends leave before its write (thesis
 * §10.2.1); every other message after it. Committed entries are applied in memory and their
 * proposers answered at once: they are durable on a majority already. Votes and append
 * acknowledgements never leave before what they promise is on disk; after a crash, the entries past
 * the tables' applied index are applied again from the log, so each is applied exactly once to the
 * durable state.
 *
 * A failed durable write is fatal: the in-memory state may be ahead of the disk, so the driver stops
 * taking part (no votes, no acks) and reports through `onFatal`.
 */
import type { Client } from "@libsql/client";
import type { SqlStatement } from "../storage/sql-writer.ts";
import { RawNode } from "../raft/raw-node.ts";
import { seededRng } from "../raft/prng.ts";
import type { ConfChange, Entry, Message, NodeId, PersistedState, RaftStatus, Ready } from "../raft/types.ts";
import type { LibsqlLogStore } from "../storage/libsql-log-store.ts";
import type { ReplicatedState, ApplyResult } from "../state/replicated-state.ts";
import type { Logger } from "../log/logger.ts";
import { raftLimits, stateFlush } from "../constants.ts";
import { AssertionError, assert } from "../assert.ts";
import { NotLeaderError, ProposalDroppedError, ProposalLostError, ProposalOutcomeUnknownError } from "./driver-errors.ts";
import { AppliedWaiters, ProposalWaiters, ReadWaiters } from "./waiters.ts";

export interface RaftTransport {
  /**
   * Hands the messages to the network before returning (or drops them). The leader's appends must
   * be on the wire while its own fsync runs, which blocks this thread: that overlap is what Raft
   * thesis §10.2.1 buys, and a send deferred to a later microtask would run after the fsync.
   */
  send(messages: readonly Message[]): void;
}

/** What a handled Ready may have changed, so listeners skip the work when nothing did. */
export interface ReadyChanges {
  /** A conf change was applied or a snapshot installed: the configuration may differ. */
  readonly configuration: boolean;
  /** Role or leader changed. */
  readonly leadership: boolean;
}

export interface RaftTiming {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Take a snapshot and compact the log once this many entries were applied since the last one, */
  readonly snapshotEveryEntries: number;
  /** ... or this many bytes of entry data. */
  readonly snapshotEveryBytes: number;
}

export interface RaftDriverOptions {
  readonly nodeId: NodeId;
  readonly store: LibsqlLogStore;
  readonly state: ReplicatedState;
  readonly transport: RaftTransport;
  readonly log: Logger;
  readonly timing: RaftTiming;
  readonly seed: number;
  readonly onFatal: (error: Error) => void;
  /** After each Ready is fully handled, saying what it may have changed. */
  readonly afterReady?: (changes: ReadyChanges) => void;
}

export class RaftDriver {
  private raw: RawNode | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private running = false;
  private stopped = false;
  private snapshotIndex = 0;
  /** Entry bytes applied since the last snapshot. */
  private bytesSinceSnapshot = 0;
  private lastFlushMs = 0;
  /** Leader as of the last Ready: a cheap routing hint (a stale one costs a retry, nothing more). */
  private leaderHint: NodeId | null = null;
  /** Term of the entry at the applied index, for snapshot images built on demand. */
  private appliedTerm = 0;
  /** Term and vote as last written, to tell a Ready that must fsync from one that need not. */
  private persistedTerm = 0;
  private persistedVote: NodeId | null = null;
  private readonly proposals = new ProposalWaiters();
  private readonly reads = new ReadWaiters();
  private readonly appliedWaiters = new AppliedWaiters();
  private readSequence = 0;
  /** Readies handled, fsynced transactions, entries written: entries per fsync = group commit. */
  readonly stats = { readies: 0, transactions: 0, entriesPersisted: 0 };

  constructor(private readonly options: RaftDriverOptions) {}

  /**
   * `bootstrapVoters`: the founding voters, used only when this node's log is empty, so a group is
   * bootstrapped exactly once; null for a node that joins an existing group.
   */
  async start(client: Client, bootstrapVoters: readonly NodeId[] | null): Promise<"bootstrapped" | "restarted" | "joining"> {
    assert(this.raw === null, "driver started twice");
    const { persisted } = await this.options.store.load();
    const empty = persisted.hardState.term === 0 && persisted.entries.length === 0 && persisted.snapshot === null;
    const founding = empty && bootstrapVoters !== null && bootstrapVoters.includes(this.options.nodeId);
    const { timing } = this.options;
    this.raw = new RawNode({
      id: this.options.nodeId,
      electionTicks: timing.electionTicks,
      heartbeatTicks: timing.heartbeatTicks,
      preVote: true,
      checkQuorum: true,
      limits: raftLimits,
      rng: seededRng(this.options.seed),
      ...(empty ? {} : { persisted }),
      ...(founding ? { bootstrapVoters: bootstrapVoters! } : {}),
    });
    this.appliedTerm = termAt(persisted, persisted.applied);
    this.persistedTerm = persisted.hardState.term;
    this.persistedVote = persisted.hardState.votedFor;
    // The tables and the stored log hold the state at `applied` (written in the same transactions).
    this.snapshotIndex = persisted.snapshot?.meta.index ?? 0;
    await this.options.state.load(client, { applied: persisted.applied, compactedThrough: this.snapshotIndex });
    this.ticker = setInterval(() => this.tick(), timing.tickMs);
    this.kick();
    return empty ? (founding ? "bootstrapped" : "joining") : "restarted";
  }

  async stop(): Promise<void> {
    const wasStopped = this.stopped;
    this.halt(new ProposalOutcomeUnknownError("node is shutting down"));
    while (this.running) await Bun.sleep(1);
    // A clean stop leaves the tables current, so the next start replays nothing.
    const state = this.options.state;
    if (!wasStopped && this.raw !== null && state.applied !== state.flushed) {
      const statements: SqlStatement[] = [];
      this.flushInto(statements);
      await this.options.store.commit(statements, { durable: true });
    }
  }

  /** No more ticks, Readies or answers; everyone still waiting learns it now, not at a deadline. */
  private halt(reason: Error): void {
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.proposals.rejectAll(reason);
    this.reads.rejectAll(reason);
    this.appliedWaiters.rejectAll(reason);
  }

  private get node(): RawNode {
    assert(this.raw !== null, "driver not started");
    return this.raw;
  }

  private tick(): void {
    if (this.stopped) return;
    this.node.tick();
    this.kick();
  }

  /** Messages from peers. */
  step(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const message of messages) this.node.step(message);
    this.kick();
  }

  /** Resolves once the entry is committed and applied here; rejects if it can never be. */
  propose(data: Uint8Array): Promise<ApplyResult> {
    return this.track(this.node.propose(data));
  }

  proposeConfChange(change: ConfChange): Promise<ApplyResult> {
    return this.track(this.node.proposeConfChange(change));
  }

  private track(result: ReturnType<RawNode["propose"]>): Promise<ApplyResult> {
    if (this.stopped) return Promise.reject(new ProposalOutcomeUnknownError("node is shutting down"));
    if (!result.ok) return Promise.reject(result.reason === "not-leader" ? new NotLeaderError(result.leader) : new ProposalDroppedError(result.detail));
    const promise = this.proposals.add(result.index, result.term, () => new ProposalLostError(`log slot ${result.index} was proposed again in term ${result.term}`));
    this.kick();
    return promise;
  }

  /** Linearizable read barrier (Raft thesis §6.4): resolves with an index this node has applied. */
  readIndex(): Promise<number> {
    if (this.stopped) return Promise.reject(new ProposalOutcomeUnknownError("node is shutting down"));
    const ctx = `${this.options.nodeId}:${++this.readSequence}`;
    const result = this.node.readIndex(ctx);
    if (!result.ok) return Promise.reject(result.reason === "not-leader" ? new NotLeaderError(result.leader) : new ProposalDroppedError(result.detail));
    const promise = this.reads.add(ctx).then((index) => this.waitApplied(index).then(() => index));
    this.kick();
    return promise;
  }

  waitApplied(index: number): Promise<void> {
    if (this.options.state.applied >= index) return Promise.resolve();
    if (this.stopped) return Promise.reject(new ProposalOutcomeUnknownError("node is shutting down"));
    return this.appliedWaiters.add(index);
  }

  transferLeadership(to: NodeId): void {
    const result = this.node.transferLeadership(to);
    if (!result.ok) throw result.reason === "not-leader" ? new NotLeaderError(result.leader) : new ProposalDroppedError(result.detail);
    this.kick();
  }

  /** Who led as of the last Ready; for routing only, never for safety. */
  get knownLeader(): NodeId | null {
    return this.leaderHint;
  }

  status(): RaftStatus {
    return this.node.status();
  }

  private kick(): void {
    if (!this.running && !this.stopped) queueMicrotask(() => void this.run());
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      for (;;) {
        // libSQL's local driver does its work, fsync included, synchronously on this thread. Give
        // the event loop a turn before each Ready so requests and peer messages that arrived during
        // the last write join the next one: that is what turns one fsync per entry into group commit.
        await yieldToEventLoop();
        if (this.stopped || !this.node.hasReady()) break;
        await this.handleReady(this.node.ready());
      }
    } catch (error) {
      this.halt(new ProposalOutcomeUnknownError("this node stopped taking part"));
      // A broken invariant is a bug, not an I/O failure: crash loudly (STYLE §4.1).
      if (error instanceof AssertionError) throw error;
      this.options.log.error("durable write failed; this node stops taking part", { error });
      this.options.onFatal(error as Error);
    } finally {
      this.running = false;
    }
  }

  private async handleReady(ready: Ready): Promise<void> {
    const { store, state, transport } = this.options;
    // Raft thesis §10.2.1: a leader's appends and heartbeats need nothing of its own disk, so they
    // leave before its write and the followers' fsyncs overlap the leader's. Votes and every
    // acknowledgement wait until what they promise is durable.
    // A Ready that changes term or vote (a lone voter can campaign and win within one) must be
    // durable before even its appends leave: they carry that term.
    const hard = ready.hardState;
    const termDurable = hard === null || (hard.term === this.persistedTerm && hard.votedFor === this.persistedVote);
    const messages = ready.messages.some(isLazySnap) ? ready.messages.map((m) => this.withSnapshotImage(m)) : ready.messages;
    const early = termDurable ? messages.filter(sendsBeforePersisting) : [];
    const late = early.length === messages.length ? [] : messages.filter((m) => !sendsBeforePersisting(m));
    if (early.length > 0) transport.send(early);
    const statements: SqlStatement[] = [];
    if (ready.snapshot !== null) {
      statements.push(...state.restore(ready.snapshot.data, ready.snapshot.meta.index));
      this.snapshotIndex = ready.snapshot.meta.index;
      this.appliedTerm = ready.snapshot.meta.term;
      this.proposals.rejectThrough(ready.snapshot.meta.index, new ProposalOutcomeUnknownError("a snapshot replaced the log"));
    }
    statements.push(...store.statementsFor(ready));
    const outcome = state.apply(ready.committedEntries);
    this.appliedTerm = ready.committedEntries.at(-1)?.term ?? this.appliedTerm;
    for (const entry of ready.committedEntries) this.bytesSinceSnapshot += entry.data.length;
    if (this.flushDue()) this.flushInto(statements);
    // Committed entries are durable on a majority already, and applying needs no durability of its
    // own (a crash re-applies from the log): answer their proposers now, not after this Ready's
    // fsync, which exists for the new entries it carries.
    let answered = this.settle(ready.committedEntries, outcome.results);
    for (const read of ready.readStates) if (this.reads.resolve(read.requestCtx, read.index)) answered++;
    if (statements.length > 0) {
      const durable = this.needsFsync(ready);
      // The answers settled above leave before this write, not after its fsync: one turn of the
      // event loop lets their continuations run (RawNode allows steps before advance()). This
      // Ready's appends are already out, so a later fsync here holds up no follower; with nobody
      // answered (a follower, mostly) there is nothing to wait for, and its ack must not wait.
      if (answered > 0) await yieldToEventLoop();
      await store.commit(statements, { durable });
      if (durable) this.stats.transactions++;
    }
    this.stats.readies++;
    this.stats.entriesPersisted += ready.entries.length;
    if (late.length > 0) transport.send(late);
    if (ready.softState !== null) this.leaderHint = ready.softState.leader;
    // The core forgets pending ReadIndex rounds when it stops leading; so must we, or they hang.
    if (ready.softState !== null && ready.softState.role !== "leader") this.reads.rejectAll(new NotLeaderError(ready.softState.leader));
    this.node.advance();
    await this.maybeCompact();
    this.options.afterReady?.({
      configuration: ready.snapshot !== null || ready.committedEntries.some((e) => e.type === "conf-change"),
      leadership: ready.softState !== null,
    });
  }

  /**
   * The state machine's tables are written now and then, not every Ready (replicated-state.ts):
   * when many keys changed, when the last flush is old, when membership changed (so a restart plans
   * its peer links from it), or while the compacted log has upkeep left: a slice of it per Ready
   * keeps deletion ahead of a sustained write rate.
   */
  private flushDue(): boolean {
    const state = this.options.state;
    if (state.upkeepDue(this.snapshotIndex)) return true;
    if (state.applied === state.flushed) return false;
    return state.unflushedCount >= stateFlush.changesMax || state.membersUnflushed || performance.now() - this.lastFlushMs >= stateFlush.intervalMs;
  }

  /** The state machine's SQL and the applied index it covers, into one transaction. */
  private flushInto(statements: SqlStatement[]): void {
    this.options.state.flush(statements, { compactedThrough: this.snapshotIndex });
    statements.push(this.options.store.appliedStatement(this.options.state.applied));
    this.lastFlushMs = performance.now();
  }

  /**
   * A follower needs a snapshot: send the state as applied now, which is committed and at or past
   * the compaction point the core chose, so it is a valid (newer) snapshot. Called before this
   * Ready's entries are applied, so the state, its term and the core's configuration agree.
   */
  private withSnapshotImage(message: Message): Message {
    if (message.type !== "snap" || !isLazySnap(message)) return message;
    const state = this.options.state;
    const confState = this.node.status().confState;
    assert(this.node.status().applied === state.applied, "the image is the core's applied state");
    return { ...message, snapshot: { meta: { index: state.applied, term: this.appliedTerm, confState }, data: state.snapshot() } };
  }

  /** Entries, snapshots, a new term or vote must be on disk before anyone hears of them. */
  private needsFsync(ready: Ready): boolean {
    const hard = ready.hardState;
    const termOrVoteChanged = hard !== null && (hard.term !== this.persistedTerm || hard.votedFor !== this.persistedVote);
    if (hard !== null) {
      this.persistedTerm = hard.term;
      this.persistedVote = hard.votedFor;
    }
    return ready.entries.length > 0 || ready.snapshot !== null || termOrVoteChanged;
  }

  /** Answers the proposers and appliedWaiters these entries satisfy; returns how many. */
  private settle(entries: readonly Entry[], results: readonly ApplyResult[]): number {
    let answered = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (this.proposals.settle(entry.index, entry.term, results[i]!, () => new ProposalLostError(`log slot ${entry.index} was taken by term ${entry.term}`))) answered++;
    }
    return answered + this.appliedWaiters.resolveThrough(this.options.state.applied);
  }

  /** Snapshot at the applied index every `snapshotEveryEntries`, so the log and restarts stay short. */
  private async maybeCompact(): Promise<void> {
    const applied = this.options.state.applied;
    const { snapshotEveryEntries, snapshotEveryBytes } = this.options.timing;
    if (applied - this.snapshotIndex < snapshotEveryEntries && this.bytesSinceSnapshot < snapshotEveryBytes) return;
    // A leader's snapshot may have arrived while the last Ready was being written: the core is
    // already past `applied`, and the next Ready restores it. Compact after that, not before.
    if ((this.node.lastSnapshot()?.meta.index ?? 0) > applied) return;
    // The log may only lose entries the tables already reflect.
    const statements: SqlStatement[] = [];
    this.flushInto(statements);
    await this.options.store.commit(statements, { durable: true });
    // The sync ran off this thread and steps went on meanwhile: a leader's snapshot may have moved
    // the core past `applied` since the check above.
    if ((this.node.lastSnapshot()?.meta.index ?? 0) > applied) return;
    // No image now: serializing the whole state here stalled writes for seconds on large states.
    // The tables are the durable state; an image is built only when a follower needs one.
    this.node.compact({ index: applied, data: lazyImage });
    const snapshot = this.node.lastSnapshot();
    assert(snapshot !== null && snapshot.meta.index === applied, "the core kept the snapshot it was given");
    this.snapshotIndex = applied;
    this.bytesSinceSnapshot = 0;
    await this.options.store.compact(snapshot);
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Messages only a leader sends, which promise nothing about the sender's own disk. */
function sendsBeforePersisting(message: Message): boolean {
  return message.type === "app" || message.type === "heartbeat" || message.type === "snap" || message.type === "timeout-now";
}

/** Marks a compaction whose image is built on demand (withSnapshotImage). */
const lazyImage = new Uint8Array(0);

function isLazySnap(message: Message): boolean {
  return message.type === "snap" && message.snapshot.data.length === 0;
}

function termAt(persisted: PersistedState, index: number): number {
  if (persisted.snapshot !== null && persisted.snapshot.meta.index === index) return persisted.snapshot.meta.term;
  const first = persisted.entries[0];
  if (index === 0 || first === undefined) return 0;
  const entry = persisted.entries[index - first.index];
  assert(entry !== undefined && entry.index === index, () => `applied index ${index} is not in the stored log`);
  return entry.term;
}
