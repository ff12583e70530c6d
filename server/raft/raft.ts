/**
 * @module The Raft state machine (etcd-io/raft `raft.go`): terms, votes, roles, replication,
 * commitment, membership, ReadIndex and leadership transfer. Pure: inputs are tick(), step() and
 * local requests; outputs are queued messages plus the log/state that RawNode turns into a Ready.
 *
 * Role behaviour is swapped, not tested: becomeFollower sets `stepFn = stepFollower` and
 * `tickFn = tickElection`, and so on. The common step() handles terms (Raft §5.1) and votes
 * (§5.2, §5.4.1, PreVote §9.6) before delegating.
 */
import { assert, unreachable } from "../assert.ts";
import { raftTuning } from "../constants.ts";
import { decodeConfChange, encodeConfChange } from "./conf-change.ts";
import { RaftLog, termUnavailable } from "./log.ts";
import { Progress } from "./progress.ts";
import { committedIndex, hasQuorum, tallyVotes } from "./quorum.ts";
import { ReadOnly } from "./read-only.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  Message,
  NodeId,
  ProposeResult,
  RaftBugs,
  RaftLimits,
  RaftOptions,
  ReadState,
  RequestResult,
  Role,
  Snapshot,
} from "./types.ts";

type AppMessage = Extract<Message, { type: "app" }>;
type AppRespMessage = Extract<Message, { type: "app-resp" }>;
type VoteMessage = Extract<Message, { type: "vote" | "pre-vote" }>;
type HeartbeatMessage = Extract<Message, { type: "heartbeat" }>;
type HeartbeatRespMessage = Extract<Message, { type: "heartbeat-resp" }>;
type SnapMessage = Extract<Message, { type: "snap" }>;

const noBugs: RaftBugs = {};
const emptyData = new Uint8Array(0);

export class Raft {
  readonly id: NodeId;
  term = 0;
  votedFor: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = "follower";
  readonly log = new RaftLog();
  /** Configuration in effect: the conf changes applied so far (they take effect when applied). */
  voters: readonly NodeId[] = [];
  learners: readonly NodeId[] = [];
  /** Index of the last conf-change entry applied to `voters`/`learners`. */
  confIndex = 0;
  /** Latest snapshot (taken locally or received), sent to followers that fell behind the log. */
  snapshot: Snapshot | null = null;
  /** Leader only: one per voter and learner, including ourselves (our match = durable index). */
  readonly prs = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  leadTransferee: NodeId | null = null;
  /** Leader: a conf change may be proposed only once applied ≥ this (one at a time, §4.1). */
  pendingConfIndex = 0;
  uncommittedBytes = 0;
  /**
   * Leader: it proposed its own removal or demotion, so it takes no more proposals. Then when the
   * removal commits, some remaining voter holds the leader's whole log and can win the leader's
   * vote even under its not-yet-updated configuration; otherwise a leader holding uncommitted
   * entries no one else has could refuse every candidate forever (found by test/sim).
   */
  leaving = false;
  /** Leader: proposals appended since the last Ready; broadcast in one batch at ready(). */
  needsBroadcast = false;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  private readonly readOnly = new ReadOnly();

  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly limits: RaftLimits;
  private readonly rng: RaftOptions["rng"];
  readonly bugs: RaftBugs;
  private stepFn: (m: Message) => void;
  private tickFn: () => void;
  private readonly matchOf = (id: NodeId): number => this.prs.get(id)?.match ?? 0;

  constructor(options: RaftOptions) {
    assert(options.id.length > 0, "node id must be non-empty");
    assert(options.heartbeatTicks >= 1, "heartbeatTicks must be ≥ 1");
    assert(options.electionTicks > options.heartbeatTicks, "electionTicks must exceed heartbeatTicks");
    assert(!(options.persisted && options.bootstrapVoters), "bootstrap only a brand-new node");
    this.id = options.id;
    this.electionTicks = options.electionTicks;
    this.heartbeatTicks = options.heartbeatTicks;
    this.preVote = options.preVote;
    this.checkQuorum = options.checkQuorum;
    this.limits = options.limits;
    this.rng = options.rng;
    this.bugs = options.bugs ?? noBugs;
    this.stepFn = this.stepFollower;
    this.tickFn = this.tickElection;
    if (options.persisted !== undefined) this.loadPersisted(options.persisted);
    else if (options.bootstrapVoters !== undefined) this.bootstrap(options.bootstrapVoters);
    this.becomeFollower(this.term, null);
  }

  // ---------------------------------------------------------------- start-up

  /** etcd Bootstrap: conf-change entries 1..n of term 1, committed, applied by the shell later. */
  private bootstrap(voters: readonly NodeId[]): void {
    assert(voters.length > 0, "bootstrap needs at least one voter");
    assert(new Set(voters).size === voters.length, "bootstrap voters must be distinct");
    voters.forEach((nodeId, i) => {
      const data = encodeConfChange({ type: "add-voter", nodeId });
      this.log.appendLeader({ term: 1, index: i + 1, type: "conf-change", data });
    });
    this.log.committed = voters.length;
    this.term = 1;
    // The founders agree on the configuration already; apply it now so the group can elect.
    this.voters = [...voters];
    this.confIndex = voters.length;
  }

  private loadPersisted(p: NonNullable<RaftOptions["persisted"]>): void {
    const log = this.log;
    if (p.snapshot !== null) {
      log.dummyIndex = p.snapshot.meta.index;
      log.dummyTerm = p.snapshot.meta.term;
      this.voters = [...p.snapshot.meta.confState.voters];
      this.learners = [...p.snapshot.meta.confState.learners];
      this.snapshot = p.snapshot;
    }
    for (const entry of p.entries) log.appendLeader(entry);
    log.stableIndex = log.lastIndex();
    assert(p.hardState.commit <= log.lastIndex(), "persisted commit beyond persisted log");
    assert(p.applied >= log.dummyIndex && p.applied <= p.hardState.commit, "persisted applied out of range");
    log.committed = p.hardState.commit;
    log.applied = p.applied;
    this.term = p.hardState.term;
    this.votedFor = p.hardState.votedFor;
    // Rebuild the configuration in effect at `applied` from the log (changes apply when applied).
    for (let i = log.dummyIndex + 1; i <= p.applied; i++) {
      const entry = log.entries[i - log.dummyIndex - 1];
      assert(entry !== undefined, "applied entry missing from the persisted log");
      if (entry.type === "conf-change") this.applyConfChange(decodeConfChange(entry.data), i);
    }
    this.confIndex = p.applied;
  }

  // ---------------------------------------------------------------- role transitions

  private reset(term: number): void {
    assert(term >= this.term, () => `term must never decrease (${this.term} → ${term})`);
    if (term !== this.term) {
      this.term = term;
      this.votedFor = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + this.rng.nextInt(this.electionTicks);
    assert(this.randomizedElectionTimeout < 2 * this.electionTicks, "timeout within [e, 2e)");
    this.votes.clear();
    this.prs.clear();
    this.leadTransferee = null;
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.leaving = false;
    this.needsBroadcast = false;
    this.readOnly.reset();
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.lead = lead;
    this.role = "follower";
    this.stepFn = this.stepFollower;
    this.tickFn = this.tickElection;
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "a leader never pre-campaigns");
    // PreVote (§9.6) leaves term and vote alone: a failed pre-election disturbs nobody.
    this.votes.clear();
    this.lead = null;
    this.role = "pre-candidate";
    this.stepFn = this.stepCandidate;
    this.tickFn = this.tickElection;
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "a leader never campaigns");
    this.reset(this.term + 1);
    this.votedFor = this.id;
    this.role = "candidate";
    this.stepFn = this.stepCandidate;
    this.tickFn = this.tickElection;
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader");
    assert(this.votedFor === this.id, "a leader voted for itself");
    this.reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    this.stepFn = this.stepLeader;
    this.tickFn = this.tickHeartbeat;
    const next = this.log.lastIndex() + 1;
    for (const id of this.voters) this.addProgress(id, next, false);
    for (const id of this.learners) this.addProgress(id, next, true);
    const self = this.prs.get(this.id);
    assert(self !== undefined, "a leader is in its own configuration");
    self.maybeUpdate(this.log.stableIndex);
    self.becomeReplicate();
    // A self-removal proposed in an earlier term may still be in flight: keep refusing proposals,
    // or we could outgrow the log of the voter that must succeed us (found by test/sim).
    this.leaving = this.pendingSelfRemoval();
    // The no-op of the new term (§5.4.2 / thesis §6.4): committing it commits everything before.
    const noop: Entry = { term: this.term, index: next, type: "normal", data: emptyData };
    this.log.appendLeader(noop);
    this.pendingConfIndex = noop.index;
    this.bcastAppend();
  }

  private addProgress(id: NodeId, next: number, isLearner: boolean): void {
    const window = { messagesMax: this.limits.inflightMessagesMax, bytesMax: this.limits.inflightBytesMax };
    const pr = new Progress(id, next, isLearner, window);
    // A new peer gets a full election timeout before CheckQuorum counts it as silent.
    pr.recentActive = true;
    this.prs.set(id, pr);
  }

  // ---------------------------------------------------------------- ticks and elections

  tick(): void {
    this.tickFn();
  }

  private tickElection(): void {
    this.electionElapsed += 1;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    assert(this.role === "leader", "heartbeat ticks only on a leader");
    this.heartbeatElapsed += 1;
    this.electionElapsed += 1;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        // Thesis §6.2: a leader cut off from a majority steps down rather than serve stale reads.
        this.becomeFollower(this.term, null);
        return;
      }
      if (this.leadTransferee !== null) this.leadTransferee = null; // transfer timed out
      this.retryLostSnapshots();
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastCtx());
    }
  }

  /** True if a majority of voters were heard from since the last check; resets the marks. */
  private quorumActive(): boolean {
    const active = hasQuorum(this.voters, (id) => id === this.id || this.prs.get(id)?.recentActive === true);
    for (const pr of this.prs.values()) if (pr.id !== this.id) pr.recentActive = false;
    return active;
  }

  /** Nothing acknowledges a `snap` but an `app-resp`; if that got lost, probe again. */
  private retryLostSnapshots(): void {
    for (const pr of this.prs.values()) {
      if (pr.state !== "snapshot") continue;
      pr.snapshotElections += 1;
      if (pr.snapshotElections >= raftTuning.snapshotRetryElections) pr.becomeProbe();
    }
  }

  /** A voter of the configuration in effect, not waiting to persist a snapshot. */
  promotable(): boolean {
    return this.voters.includes(this.id) && this.log.pendingSnapshot === null;
  }

  /** An unapplied conf change in our log removes or demotes us. Bounded by the uncommitted tail. */
  private pendingSelfRemoval(): boolean {
    const log = this.log;
    for (let i = Math.max(log.applied, log.dummyIndex) + 1; i <= log.lastIndex(); i++) {
      const entry = log.entries[i - log.dummyIndex - 1];
      if (entry?.type !== "conf-change") continue;
      const change = decodeConfChange(entry.data);
      if (change.nodeId === this.id && change.type !== "add-voter") return true;
    }
    return false;
  }

  private hasUnappliedConfChange(): boolean {
    const log = this.log;
    for (let i = Math.max(log.applied, log.dummyIndex) + 1; i <= log.committed; i++) {
      if (log.entries[i - log.dummyIndex - 1]?.type === "conf-change") return true;
    }
    return false;
  }

  /** Start an election (etcd `hup`); `transfer` skips PreVote and the leader lease. */
  hup(transfer: boolean): void {
    if (this.role === "leader" || !this.promotable()) return;
    // The configuration we would lead with must be the one the log has committed.
    if (this.hasUnappliedConfChange()) return;
    if (this.preVote && !transfer) this.campaignPre();
    else this.campaign(transfer);
  }

  private campaignPre(): void {
    this.becomePreCandidate();
    this.votes.set(this.id, true);
    if (tallyVotes(this.voters, this.votes) === "won") return this.campaign(false);
    this.sendVoteRequests("pre-vote", this.term + 1, false);
  }

  private campaign(transfer: boolean): void {
    this.becomeCandidate();
    this.votes.set(this.id, true);
    if (tallyVotes(this.voters, this.votes) === "won") return this.becomeLeader();
    this.sendVoteRequests("vote", this.term, transfer);
  }

  private sendVoteRequests(type: "vote" | "pre-vote", term: number, transfer: boolean): void {
    assert(term >= this.term, "vote requests carry our term or the next");
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const to of this.voters) {
      if (to !== this.id) this.msgs.push({ type, from: this.id, to, term, index, logTerm, transfer });
    }
  }

  // ---------------------------------------------------------------- the common step

  step(m: Message): void {
    assert(m.to === this.id, () => `message for ${m.to} delivered to ${this.id}`);
    assert(m.from !== this.id, "a node never messages itself");
    if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.stepLowerTerm(m);
      return;
    }
    if (m.type === "vote" || m.type === "pre-vote") this.handleVoteRequest(m);
    else this.stepFn(m);
  }

  /** Raft §5.1 with the PreVote and leader-lease refinements. Returns false to ignore `m`. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === "vote" || m.type === "pre-vote") {
      // CheckQuorum lease (thesis §4.2.3): while we hear from a leader, ignore disruptive servers.
      const inLease = this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTicks;
      if (inLease && !m.transfer) return false;
    }
    if (m.type === "pre-vote") return true; // never change our term for a pre-vote
    if (m.type === "pre-vote-resp" && !m.reject) return true; // granted for our future term
    const fromLeader = m.type === "app" || m.type === "heartbeat" || m.type === "snap";
    this.becomeFollower(m.term, fromLeader ? m.from : null);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === "app" || m.type === "heartbeat")) {
      // A stale leader would otherwise never learn the new term while we ignore its
      // pre-votes; the app-resp at our term makes it step down (etcd, §9.6).
      this.msgs.push({ type: "app-resp", from: this.id, to: m.from, term: this.term, index: 0, reject: false, rejectHint: 0, logTerm: 0 });
    } else if (m.type === "pre-vote" || m.type === "vote") {
      // Raft §5.1: reject with our term. etcd stays silent on a stale vote; but a candidate whose
      // stale configuration leads it to ask only peers that lag in term would then never learn
      // the current term and could livelock the group (found by test/raft/fuzz.test.ts).
      const type = m.type === "vote" ? "vote-resp" : "pre-vote-resp";
      this.msgs.push({ type, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  /** Raft §5.2 (one vote per term) and §5.4.1 (only for an up-to-date log); PreVote §9.6. */
  private handleVoteRequest(m: VoteMessage): void {
    const canVote =
      this.votedFor === m.from ||
      (this.votedFor === null && this.lead === null) ||
      (m.type === "pre-vote" && m.term > this.term);
    const upToDate = this.bugs.voteWithoutLogCheck === true || this.log.isUpToDate(m.index, m.logTerm);
    const respType = m.type === "vote" ? "vote-resp" : "pre-vote-resp";
    if (canVote && upToDate) {
      // A pre-vote grant carries the candidate's future term, so it passes its term check.
      this.msgs.push({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === "vote") {
        assert(this.votedFor === null || this.votedFor === m.from, "at most one vote per term");
        this.electionElapsed = 0;
        this.votedFor = m.from;
      }
    } else {
      this.msgs.push({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  // ---------------------------------------------------------------- role step functions

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleAppend(m);
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleHeartbeat(m);
      case "snap":
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleSnapshot(m);
      case "timeout-now":
        // Leadership transfer (thesis §3.10): campaign now, past PreVote and the lease.
        return this.hup(true);
      case "app-resp":
      case "vote":
      case "pre-vote":
      case "vote-resp":
      case "pre-vote-resp":
      case "heartbeat-resp":
        return; // stale answers from when we led or campaigned
      default:
        return unreachable(m);
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "app":
        this.becomeFollower(m.term, m.from); // §5.2: a current leader exists
        return this.handleAppend(m);
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        return this.handleHeartbeat(m);
      case "snap":
        this.becomeFollower(m.term, m.from);
        return this.handleSnapshot(m);
      case "vote-resp":
      case "pre-vote-resp":
        return this.handleVoteResponse(m.type, m.from, m.reject);
      case "timeout-now":
      case "app-resp":
      case "vote":
      case "pre-vote":
      case "heartbeat-resp":
        return;
      default:
        return unreachable(m);
    }
  }

  private handleVoteResponse(type: "vote-resp" | "pre-vote-resp", from: NodeId, reject: boolean): void {
    const expected = this.role === "pre-candidate" ? "pre-vote-resp" : "vote-resp";
    if (type !== expected || this.votes.has(from)) return;
    this.votes.set(from, !reject);
    const result = tallyVotes(this.voters, this.votes);
    switch (result) {
      case "won":
        if (this.role === "pre-candidate") this.campaign(false);
        else this.becomeLeader();
        return;
      case "lost":
        this.becomeFollower(this.term, null);
        return;
      case "pending":
        return;
      default:
        unreachable(result);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "app-resp":
        return this.handleAppendResponse(m);
      case "heartbeat-resp":
        return this.handleHeartbeatResponse(m);
      case "app":
      case "heartbeat":
      case "snap":
      case "timeout-now":
      case "vote":
      case "pre-vote":
      case "vote-resp":
      case "pre-vote-resp":
        // Same-term leader traffic is impossible in a correct group; with test bugs enabled
        // (forgetVote) it can happen, and the simulator's checkers, not this core, must see it.
        return;
      default:
        return unreachable(m);
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppend(m: AppMessage): void {
    const log = this.log;
    if (m.index < log.committed) {
      this.sendAppendResponse(m.from, log.committed, false, 0, 0);
      return;
    }
    const lastNew = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew >= 0) {
      this.sendAppendResponse(m.from, lastNew, false, 0, 0);
      return;
    }
    // §5.3 fast backtracking: tell the leader the last index whose term is ≤ its probe's term.
    const hint = log.findConflictByTerm(Math.min(m.index, log.lastIndex()), m.logTerm);
    this.sendAppendResponse(m.from, m.index, true, hint.index, hint.term);
  }

  private sendAppendResponse(to: NodeId, index: number, reject: boolean, rejectHint: number, logTerm: number): void {
    this.msgs.push({ type: "app-resp", from: this.id, to, term: this.term, index, reject, rejectHint, logTerm });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // The leader sends min(match, commit), so this never points past our log.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.msgs.push({ type: "heartbeat-resp", from: this.id, to: m.from, term: this.term, context: m.context });
  }

  private handleSnapshot(m: SnapMessage): void {
    const meta = m.snapshot.meta;
    const log = this.log;
    if (meta.index <= log.committed) {
      this.sendAppendResponse(m.from, log.committed, false, 0, 0);
    } else if (log.matchTerm(meta.index, meta.term)) {
      // We already hold that prefix (Raft §7): just fast-forward the commit index.
      log.commitTo(meta.index);
      this.sendAppendResponse(m.from, log.committed, false, 0, 0);
    } else {
      log.restore(m.snapshot);
      this.snapshot = m.snapshot;
      this.voters = [...meta.confState.voters];
      this.learners = [...meta.confState.learners];
      this.confIndex = meta.index;
      assert(log.lastIndex() === meta.index, "restored log ends at the snapshot");
      this.sendAppendResponse(m.from, log.lastIndex(), false, 0, 0);
    }
  }

  // ---------------------------------------------------------------- leader replication

  private handleAppendResponse(m: AppRespMessage): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return; // removed peer
    pr.recentActive = true;
    if (m.reject) return this.handleAppendReject(pr, m);
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.inflights.freeLE(m.index);
    if (this.maybeCommit()) this.bcastAppend();
    else if (wasPaused) this.maybeSendAppend(pr, true);
    while (this.maybeSendAppend(pr, false));
    if (this.maybeHandOff()) return;
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleAppendReject(pr: Progress, m: AppRespMessage): void {
    assert(m.reject, "handling a rejection");
    let hint = m.rejectHint;
    // Skip every entry of a term the follower does not have (etcd findConflictByTerm on both sides).
    if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (!pr.maybeDecrTo(m.index, hint)) return;
    if (pr.state === "replicate") pr.becomeProbe();
    this.maybeSendAppend(pr, true);
  }

  private handleHeartbeatResponse(m: HeartbeatRespMessage): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    // A full window may mean lost appends; free a slot so the follower can be probed again.
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.maybeSendAppend(pr, true);
    if (m.context !== null && !pr.isLearner) {
      for (const read of this.readOnly.ack(m.context, m.from, this.voters)) this.readStates.push(read);
    }
  }

  bcastAppend(): void {
    this.needsBroadcast = false;
    for (const pr of this.prs.values()) if (pr.id !== this.id) this.maybeSendAppend(pr, true);
  }

  /** Send the next batch to `pr` if its flow control allows (etcd `maybeSendAppend`). */
  private maybeSendAppend(pr: Progress, sendIfEmpty: boolean): boolean {
    assert(pr.id !== this.id, "never append to ourselves");
    if (pr.isPaused()) return false;
    const log = this.log;
    const prevIndex = pr.next - 1;
    // Leader Completeness (§5.4): no follower can have matched beyond the leader's log.
    assert(prevIndex <= log.lastIndex(), () => `${pr.id} matched ${pr.match} beyond leader's last ${log.lastIndex()}`);
    const prevTerm = log.term(prevIndex);
    if (prevTerm === termUnavailable) return this.sendSnapshot(pr);
    const last = log.lastIndex();
    if (pr.next > last && !sendIfEmpty) return false;
    // Cap by the message limit and by what is left of the in-flight byte window.
    const room = Math.min(this.limits.appendBytesMax, this.limits.inflightBytesMax - pr.inflights.bytes);
    const entries = pr.next > last ? [] : log.slice(pr.next, last + 1, room);
    let bytes = 0;
    for (const entry of entries) bytes += entry.data.length;
    this.msgs.push({ type: "app", from: this.id, to: pr.id, term: this.term, index: prevIndex, logTerm: prevTerm, entries, commit: log.committed });
    pr.sentEntries(prevIndex + entries.length, entries.length, bytes);
    return true;
  }

  private sendSnapshot(pr: Progress): boolean {
    const snapshot = this.snapshot;
    assert(snapshot !== null, "entries are compacted, so a snapshot exists");
    assert(snapshot.meta.index >= this.log.dummyIndex, "the snapshot covers the compacted prefix");
    this.msgs.push({ type: "snap", from: this.id, to: pr.id, term: this.term, snapshot });
    pr.becomeSnapshot(snapshot.meta.index);
    return false;
  }

  private bcastHeartbeat(context: string | null): void {
    const committed = this.log.committed;
    for (const pr of this.prs.values()) {
      if (pr.id === this.id) continue;
      const commit = Math.min(pr.match, committed);
      this.msgs.push({ type: "heartbeat", from: this.id, to: pr.id, term: this.term, commit, context });
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.msgs.push({ type: "timeout-now", from: this.id, to, term: this.term });
  }

  /**
   * Advance the commit index to what a majority of voters hold (Raft §5.3), but only through an
   * entry of the current term (§5.4.2, Figure 8). Our own match is our durable index (§10.2.1).
   */
  maybeCommit(): boolean {
    assert(this.role === "leader", "only a leader commits by counting");
    const log = this.log;
    const index = committedIndex(this.voters, this.matchOf);
    if (index <= log.committed) return false;
    if (this.bugs.commitOldTermByCount !== true && log.term(index) !== this.term) return false;
    assert(index <= log.lastIndex(), "a majority cannot hold entries the leader lacks");
    let bytes = 0;
    for (let i = log.committed + 1; i <= index; i++) bytes += log.entries[i - log.dummyIndex - 1]?.data.length ?? 0;
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - bytes);
    log.commitTo(index);
    if (this.readOnly.awaitingCommit.length > 0 && log.term(index) === this.term) {
      const ctxs = this.readOnly.awaitingCommit;
      this.readOnly.awaitingCommit = [];
      this.startReads(ctxs);
    }
    return true;
  }

  /** advance(): our own log is durable up to stableIndex, so it now counts toward commit. */
  leaderPersisted(): void {
    if (this.role !== "leader") return;
    const self = this.prs.get(this.id);
    assert(self !== undefined, "a leader tracks itself");
    self.maybeUpdate(this.log.stableIndex);
    if (this.maybeCommit()) this.bcastAppend();
  }

  // ---------------------------------------------------------------- local requests

  propose(data: Uint8Array): ProposeResult {
    if (this.role !== "leader") return { ok: false, reason: "not-leader", leader: this.lead };
    if (this.leadTransferee !== null) return { ok: false, reason: "dropped", detail: "leadership transfer in progress" };
    if (this.leaving) return { ok: false, reason: "dropped", detail: "leader is being removed" };
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + data.length > this.limits.uncommittedBytesMax) {
      return { ok: false, reason: "dropped", detail: "uncommitted bytes at limit" };
    }
    return this.appendProposal("normal", data);
  }

  private appendProposal(type: Entry["type"], data: Uint8Array): ProposeResult {
    const entry: Entry = { term: this.term, index: this.log.lastIndex() + 1, type, data };
    this.log.appendLeader(entry);
    this.uncommittedBytes += data.length;
    this.needsBroadcast = true;
    return { ok: true, index: entry.index, term: entry.term };
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.role !== "leader") return { ok: false, reason: "not-leader", leader: this.lead };
    const refusal = this.confChangeRefusal(change);
    if (refusal !== null) return { ok: false, reason: "dropped", detail: refusal };
    const result = this.appendProposal("conf-change", encodeConfChange(change));
    assert(result.ok, "conf change appended");
    this.pendingConfIndex = result.index;
    if (change.nodeId === this.id && change.type !== "add-voter") this.leaving = true;
    return result;
  }

  /** Why a conf change cannot be proposed now, or null (thesis §4.1: one at a time). */
  private confChangeRefusal(change: ConfChange): string | null {
    if (this.leadTransferee !== null) return "leadership transfer in progress";
    if (this.log.term(this.log.committed) !== this.term) return "leader has not committed its term's no-op";
    if (this.log.applied < this.pendingConfIndex) return "a conf change or the no-op is not yet applied";
    const isVoter = this.voters.includes(change.nodeId);
    const isLearner = this.learners.includes(change.nodeId);
    switch (change.type) {
      case "add-voter":
        return isVoter ? "already a voter" : null;
      case "add-learner":
        if (isLearner) return "already a learner";
        return isVoter && this.voters.length === 1 ? "would leave no voters" : null;
      case "remove-node":
        if (!isVoter && !isLearner) return "not a member";
        return isVoter && this.voters.length === 1 ? "would leave no voters" : null;
      default:
        return unreachable(change.type);
    }
  }

  /** Apply a committed conf change (at apply time, as etcd does). */
  applyConfChange(change: ConfChange, index: number): void {
    assert(index > this.confIndex, "conf changes apply in log order, once");
    const id = change.nodeId;
    const voters = this.voters.filter((v) => v !== id);
    const learners = this.learners.filter((l) => l !== id);
    switch (change.type) {
      case "add-voter":
        voters.push(id);
        break;
      case "add-learner":
        learners.push(id);
        break;
      case "remove-node":
        break;
      default:
        unreachable(change.type);
    }
    this.voters = voters;
    this.learners = learners;
    this.confIndex = index;
    if (this.role === "leader") this.leaderConfChanged();
  }

  private leaderConfChanged(): void {
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.prs.keys()]) {
      // A removed leader keeps tracking itself until it hands over (maybeHandOff).
      if (id !== this.id && !this.voters.includes(id) && !this.learners.includes(id)) this.prs.delete(id);
    }
    for (const id of this.voters) {
      const pr = this.prs.get(id);
      if (pr === undefined) this.addProgress(id, next, false);
      else pr.isLearner = false;
    }
    for (const id of this.learners) {
      const pr = this.prs.get(id);
      if (pr === undefined) this.addProgress(id, next, true);
      else pr.isLearner = true;
    }
    if (this.leadTransferee !== null && !this.voters.includes(this.leadTransferee)) this.leadTransferee = null;
    if (!this.voters.includes(this.id)) {
      this.leaving = true;
      if (this.maybeHandOff()) return;
    }
    // A smaller quorum may already hold more entries.
    if (this.maybeCommit()) this.bcastAppend();
    else this.needsBroadcast = true;
  }

  /**
   * A leader removed from (or demoted in) the configuration it leads. Stepping down at once can
   * strand the group: a remaining voter that has not yet learned the removal committed still counts
   * this node as a voter and needs its vote, which our longer log would refuse. So we keep leading,
   * accept nothing new, and as soon as a remaining voter holds our whole log we hand over with
   * TimeoutNow (thesis §3.10) and step down; that voter wins with or without our vote.
   */
  private maybeHandOff(): boolean {
    if (this.role !== "leader" || this.voters.includes(this.id)) return false;
    assert(this.leaving, "a leader outside its configuration refuses proposals");
    const last = this.log.lastIndex();
    const successor = this.voters.find((id) => this.prs.get(id)?.match === last);
    if (successor === undefined) return false;
    this.sendTimeoutNow(successor);
    this.becomeFollower(this.term, null);
    return true;
  }

  readIndex(requestCtx: string): RequestResult {
    if (this.role !== "leader") return { ok: false, reason: "not-leader", leader: this.lead };
    if (this.readOnly.count() >= this.limits.readIndexPendingMax) {
      return { ok: false, reason: "dropped", detail: "too many pending reads" };
    }
    if (this.readOnly.has(requestCtx)) return { ok: false, reason: "dropped", detail: "duplicate requestCtx" };
    // Thesis §6.4 step 1: the commit index is only known current once we committed in our term.
    if (this.log.term(this.log.committed) !== this.term) this.readOnly.awaitingCommit.push(requestCtx);
    else this.startReads([requestCtx]);
    return { ok: true };
  }

  private startReads(ctxs: readonly string[]): void {
    assert(this.role === "leader", "only a leader serves ReadIndex");
    const index = this.log.committed;
    if (this.voters.length === 1) {
      // Single voter: we are the quorum, nothing to confirm.
      for (const requestCtx of ctxs) this.readStates.push({ index, requestCtx });
      return;
    }
    for (const requestCtx of ctxs) this.readOnly.add(requestCtx, index, this.id);
    const last = ctxs[ctxs.length - 1];
    assert(last !== undefined, "at least one read started");
    this.bcastHeartbeat(last);
  }

  transferLeadership(to: NodeId): RequestResult {
    if (this.role !== "leader") return { ok: false, reason: "not-leader", leader: this.lead };
    if (to === this.id) return { ok: false, reason: "dropped", detail: "already the leader" };
    const pr = this.prs.get(to);
    if (pr === undefined || !this.voters.includes(to)) return { ok: false, reason: "dropped", detail: "target is not a voter" };
    if (this.leadTransferee === to) return { ok: true };
    // Thesis §3.10: stop taking proposals, catch the target up, then tell it to campaign.
    this.leadTransferee = to;
    this.electionElapsed = 0; // the transfer is abandoned after one election timeout
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.maybeSendAppend(pr, true);
    return { ok: true };
  }

  reportUnreachable(peer: NodeId): void {
    if (this.role !== "leader") return;
    const pr = this.prs.get(peer);
    if (pr === undefined || pr.id === this.id) return;
    // Whatever was in flight may be lost: fall back to one probe at a time.
    if (pr.state === "replicate" || pr.state === "snapshot") pr.becomeProbe();
    assert(pr.state === "probe", "unreachable peer is probed");
  }

  /** The shell snapshotted its state machine at `index` (= applied); compact the log behind it. */
  compact(index: number, data: Uint8Array): void {
    const log = this.log;
    assert(index === log.applied, () => `snapshot index ${index} must equal applied ${log.applied}`);
    assert(index >= log.dummyIndex, "snapshot older than the compaction point");
    const term = log.term(index);
    assert(term !== termUnavailable, "snapshot index must be in the log");
    const confState: ConfState = { voters: [...this.voters], learners: [...this.learners] };
    assert(this.confIndex <= index, "snapshot configuration is the applied one");
    this.snapshot = { meta: { index, term, confState }, data };
    const keepFrom = Math.min(index - raftTuning.snapshotTrailingEntries, log.stableIndex);
    if (keepFrom > log.dummyIndex) log.compactTo(keepFrom);
  }
}
