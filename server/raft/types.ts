/**
 * @module The Raft core's contract: log entries, persisted state, wire messages, the Ready batch the
 * shell acts on, and the typed results of local requests. Everything here is plain data, so the
 * same shapes serve the in-memory simulator, the libSQL log store and the peer-link codec.
 *
 * The design follows etcd-io/raft: the core never does I/O. The shell loops
 *   ready() → persist (snapshot, entries, hardState: one transaction) → send messages →
 *   apply committedEntries → advance().
 */

/** A node's identity in the group; stable for the node's life (never reused after removal). */
export type NodeId = string;

/** Bumped whenever a message shape changes; carried by the peer-link codec, checked on receipt. */
export const RAFT_PROTOCOL_VERSION = 1;

export type EntryType = "normal" | "conf-change";

/** One log slot. `conf-change` entries carry an encoded ConfChange (see conf-change.ts). */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be on disk before any message of the same Ready leaves the node (Raft §5, Fig. 2). */
export interface HardState {
  readonly term: number;
  readonly votedFor: NodeId | null;
  readonly commit: number;
}

/** Membership in effect. Single-server changes, so there is never more than one configuration. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export type ConfChangeType = "add-voter" | "add-learner" | "remove-node";

/**
 * A membership change (Raft thesis §4.1, one server at a time). `add-voter` on an existing learner
 * promotes it. A change takes effect when its entry is applied (handed out in committedEntries and
 * followed by advance()), as in etcd.
 */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The application's state machine image at meta.index; opaque to the core. */
  readonly data: Uint8Array;
}

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** Wire messages between cores. A discriminated union on `type`; see RAFT_PROTOCOL_VERSION. */
export type Message =
  | (Envelope & {
      readonly type: "app";
      /** index/logTerm of the entry immediately preceding `entries` (Raft §5.3 consistency check). */
      readonly index: number;
      readonly logTerm: number;
      readonly entries: readonly Entry[];
      readonly commit: number;
    })
  | (Envelope & {
      readonly type: "app-resp";
      /** On success: the last index now matching the leader. On reject: the rejected `index`. */
      readonly index: number;
      readonly reject: boolean;
      /** On reject: fast-backtracking hint (thesis §5.3 optimisation): a conflict index and its term. */
      readonly rejectHint: number;
      readonly logTerm: number;
    })
  | (Envelope & {
      readonly type: "vote" | "pre-vote";
      /** Candidate's last log index and term (Raft §5.4.1 up-to-date check). */
      readonly index: number;
      readonly logTerm: number;
      /** Set when the election follows TimeoutNow: bypasses leader stickiness / CheckQuorum lease. */
      readonly transfer: boolean;
    })
  | (Envelope & { readonly type: "vote-resp" | "pre-vote-resp"; readonly reject: boolean })
  | (Envelope & {
      readonly type: "heartbeat";
      readonly commit: number;
      /** ReadIndex round this heartbeat confirms leadership for, if any. */
      readonly context: string | null;
    })
  | (Envelope & { readonly type: "heartbeat-resp"; readonly context: string | null })
  | (Envelope & { readonly type: "snap"; readonly snapshot: Snapshot })
  | (Envelope & { readonly type: "timeout-now" });

export type MessageType = Message["type"];

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Volatile state, reported when it changes so the shell can route proposals. */
export interface SoftState {
  readonly leader: NodeId | null;
  readonly role: Role;
}

/** A linearizable read may be served once the local applied index reaches `index` (thesis §6.4). */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: string;
}

/** One batch of work for the shell. Empty arrays / nulls mean "nothing of that kind". */
export interface Ready {
  readonly softState: SoftState | null;
  /** Null when unchanged since the last Ready. */
  readonly hardState: HardState | null;
  /** A snapshot received from the leader: persist it and restore the state machine from it. */
  readonly snapshot: Snapshot | null;
  /**
   * Entries to append to stable storage. The first one may overwrite an existing suffix: the shell
   * deletes every stored entry with index ≥ entries[0].index before writing.
   */
  readonly entries: readonly Entry[];
  /** Messages to send after the entries/hardState above are durable. */
  readonly messages: readonly Message[];
  /** Entries to apply to the state machine, in order, exactly once. */
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

export type NotLeader = { readonly ok: false; readonly reason: "not-leader"; readonly leader: NodeId | null };
export type Dropped = { readonly ok: false; readonly reason: "dropped"; readonly detail: string };

/** Result of propose / proposeConfChange: where the entry landed if accepted. */
export type ProposeResult = { readonly ok: true; readonly index: number; readonly term: number } | NotLeader | Dropped;

/** Result of readIndex / transferLeadership. */
export type RequestResult = { readonly ok: true } | NotLeader | Dropped;

/** Everything the node had made durable before it (re)started. */
export interface PersistedState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | null;
  /** Entries after the snapshot (or from index 1), contiguous. */
  readonly entries: readonly Entry[];
  /** Last index the state machine had applied (≥ snapshot index, ≤ hardState.commit). */
  readonly applied: number;
}

/** Injected randomness: the only source of nondeterminism the core sees. */
export interface Rng {
  /** Uniform integer in [0, maxExclusive). */
  nextInt(maxExclusive: number): number;
}

export interface RaftLimits {
  /** Bytes of entry data in one `app` message (at least one entry is always sent). */
  readonly appendBytesMax: number;
  /** Unacknowledged `app` messages in flight to one follower (pipelining window). */
  readonly inflightMessagesMax: number;
  /** Unacknowledged entry bytes in flight to one follower. */
  readonly inflightBytesMax: number;
  /** Bytes of proposed-but-uncommitted entry data the leader accepts before dropping proposals. */
  readonly uncommittedBytesMax: number;
  /** Pending ReadIndex requests the leader queues before dropping new ones. */
  readonly readIndexPendingMax: number;
}

export interface RaftOptions {
  readonly id: NodeId;
  /** Election timeout is randomized in [electionTicks, 2 × electionTicks) (Raft §5.2). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly limits: RaftLimits;
  readonly rng: Rng;
  /** Restart from durable state; omit for a brand-new node. */
  readonly persisted?: PersistedState;
  /**
   * Only for a brand-new node founding a group: the initial voters. Written as conf-change entries
   * 1..n of term 1, committed, exactly as etcd's Bootstrap, so every founder has the same log and a
   * later joiner learns the configuration from the log or a snapshot.
   */
  readonly bootstrapVoters?: readonly NodeId[];
  /** Test-only: deliberately broken behaviours that prove the simulator's checkers catch bugs. */
  readonly bugs?: RaftBugs;
}

/** Each flag re-creates a classic Raft bug. Never set outside tests. */
export interface RaftBugs {
  /** Commit an entry of an earlier term by counting replicas (violates Raft §5.4.2 / Figure 8). */
  readonly commitOldTermByCount?: boolean;
  /** Grant a vote without the candidate-log-up-to-date check (violates Raft §5.4.1). */
  readonly voteWithoutLogCheck?: boolean;
  /** Leave votedFor out of the persisted HardState, so a restart can vote twice in one term. */
  readonly forgetVote?: boolean;
}

export type ProgressState = "probe" | "replicate" | "snapshot";

export interface PeerProgress {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly recentActive: boolean;
  readonly isLearner: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
  readonly votedFor: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  /** Leader only; empty elsewhere. */
  readonly progress: ReadonlyMap<NodeId, PeerProgress>;
}
