/**
 * @module The safety oracle: Raft's guarantees (Raft §5.2–§5.4, Figure 3) checked against the
 * history the simulator observes, after every step. It keeps only what the properties need:
 * the leader of each term ever seen, every (index, term) ever made durable with its content and
 * its predecessor's term, and every committed index with a bound on the term it was committed in.
 *
 * "Committed" is observed, not assumed: an entry is committed once any node applies it (the client
 * is acknowledged then). Its commit term is bounded above by the applier's current term, since the
 * commit index it acted on came from a leader of that term or earlier. Leader Completeness is only
 * demanded of leaders whose term exceeds that bound, which keeps the check free of false alarms.
 */
import type { NodeId } from "../../server/raft/types.ts";
import type { LogView } from "./storage.ts";
import { noTerm } from "./storage.ts";
import type { StateMachine } from "./state-machine.ts";

export type ViolationKind =
  | "election-safety"
  | "leader-append-only"
  | "log-matching"
  | "leader-completeness"
  | "state-machine-safety"
  | "commit-index"
  | "apply-order"
  | "acknowledged-lost"
  | "linearizability"
  | "liveness"
  | "exception";

/** A broken safety or liveness property. Never caught inside a run: it ends the run. */
export class Violation extends Error {
  override readonly name = "Violation";
  constructor(
    readonly kind: ViolationKind,
    readonly detail: string,
  ) {
    super(`[${kind}] ${detail}`);
  }
}

export function violated(kind: ViolationKind, detail: string): never {
  throw new Violation(kind, detail);
}

interface Committed {
  readonly term: number;
  readonly code: number;
  /** Upper bound on the term in which this index was committed. */
  bound: number;
}

interface Leadership {
  readonly term: number;
  readonly log: LogView;
}

export class SafetyChecker {
  private readonly leaderByTerm = new Map<number, NodeId>();
  private readonly leaders = new Map<NodeId, Leadership>();
  /** Per node: the term it last led and the durable last index it reached as leader in it. */
  private readonly watermarks = new Map<NodeId, { term: number; lastIndex: number }>();
  private readonly contentAt = new Map<string, number>();
  private readonly prevTermAt = new Map<string, number>();
  /** committed[index]: what every node must apply at that index. */
  private readonly committed: (Committed | undefined)[] = [];
  private readonly payloadIndex = new Map<number, number>();

  /** Highest index known committed (applied somewhere): what any acknowledged write reached. */
  committedIndexMax = 0;

  /** Election Safety (§5.2) and, on a new leadership, Leader Completeness (§5.4). */
  observeRole(node: NodeId, term: number, isLeader: boolean, log: LogView): void {
    if (!isLeader) {
      this.leaders.delete(node);
      return;
    }
    const other = this.leaderByTerm.get(term);
    if (other !== undefined && other !== node) {
      violated("election-safety", `two leaders in term ${term}: ${other} and ${node}`);
    }
    this.leaderByTerm.set(term, node);
    if (this.leaders.get(node)?.term !== term) {
      this.leaders.set(node, { term, log });
      for (let index = 1; index < this.committed.length; index += 1) this.checkLeaderHas(node, term, log, index);
    }
    const mark = this.watermarks.get(node);
    const lastIndex = log.lastIndex();
    if (mark === undefined || mark.term !== term) this.watermarks.set(node, { term, lastIndex });
    else mark.lastIndex = Math.max(mark.lastIndex, lastIndex);
  }

  observeDown(node: NodeId): void {
    this.leaders.delete(node);
  }

  /**
   * Leader Append-Only (§5.3): a write to `node`'s durable log starting at `firstIndex`, made while
   * its term is `term`. If the node led that term, nothing it wrote as leader may be replaced.
   */
  checkWrite(node: NodeId, term: number, firstIndex: number): void {
    const mark = this.watermarks.get(node);
    if (mark === undefined || mark.term !== term || firstIndex > mark.lastIndex) return;
    violated(
      "leader-append-only",
      `${node} led term ${term} up to index ${mark.lastIndex} but rewrites its log from ${firstIndex}`,
    );
  }

  /** Log Matching (§5.3): one (index, term) means one content and one predecessor term, everywhere. */
  recordEntry(node: NodeId, index: number, term: number, code: number, prevTerm: number): void {
    const key = `${index}:${term}`;
    const content = this.contentAt.get(key);
    if (content === undefined) {
      this.contentAt.set(key, code);
      this.prevTermAt.set(key, prevTerm);
      return;
    }
    if (content !== code) {
      violated("log-matching", `${node} stores entry ${key} with content ${code}, elsewhere ${content}`);
    }
    const prev = this.prevTermAt.get(key);
    if (prev !== prevTerm && prevTerm !== noTerm && prev !== noTerm) {
      violated("log-matching", `${node} has entry ${key} after term ${prevTerm}, elsewhere after term ${prev}`);
    }
  }

  /**
   * State Machine Safety (§5.4.3): every node applies the same entry at an index, and a client
   * payload lands at exactly one index. `observerTerm` is the applier's current term.
   */
  recordApplied(node: NodeId, index: number, term: number, code: number, observerTerm: number): boolean {
    const known = this.committed[index];
    if (known !== undefined) {
      if (known.term !== term || known.code !== code) {
        violated(
          "state-machine-safety",
          `${node} applied (term ${term}, content ${code}) at ${index}; earlier (term ${known.term}, content ${known.code})`,
        );
      }
      if (observerTerm < known.bound) {
        known.bound = observerTerm;
        this.checkLeadersHave(index);
      }
      return false;
    }
    if (code > 0) {
      const at = this.payloadIndex.get(code);
      if (at !== undefined && at !== index) {
        violated("state-machine-safety", `${node} applied payload ${code} at ${index}; it was applied at ${at}`);
      }
      this.payloadIndex.set(code, index);
    }
    this.committed[index] = { term, code, bound: observerTerm };
    this.committedIndexMax = Math.max(this.committedIndexMax, index);
    this.checkLeadersHave(index);
    return true;
  }

  /** A snapshot image a node restored from: every index in it must agree with what was applied. */
  checkImage(node: NodeId, sm: StateMachine, observerTerm: number): void {
    for (let index = 1; index <= sm.applied; index += 1) {
      this.recordApplied(node, index, sm.terms[index - 1] ?? 0, sm.codes[index - 1] ?? 0, observerTerm);
    }
  }

  committedAt(index: number): { readonly term: number; readonly code: number } | undefined {
    return this.committed[index];
  }

  /** Linearizable reads (thesis §6.4): a read never returns state older than an acknowledged write. */
  checkRead(node: NodeId, requestCtx: string, readIndex: number, committedAtIssue: number): void {
    if (readIndex >= committedAtIssue) return;
    violated(
      "linearizability",
      `${node} read ${requestCtx} at index ${readIndex}, but index ${committedAtIssue} was acknowledged before it was issued`,
    );
  }

  private checkLeadersHave(index: number): void {
    for (const [node, leadership] of this.leaders) this.checkLeaderHas(node, leadership.term, leadership.log, index);
  }

  private checkLeaderHas(node: NodeId, term: number, log: LogView, index: number): void {
    const entry = this.committed[index];
    if (entry === undefined || entry.bound >= term || index <= log.snapshotIndex) return;
    const has = log.termAt(index);
    if (has === entry.term) return;
    violated(
      "leader-completeness",
      `${node} leads term ${term} without entry ${index} (term ${entry.term}) committed by term ${entry.bound}; its log has ${has === noTerm ? "nothing" : `term ${has}`} there`,
    );
  }
}

/** Applied exactly once and in order (per node incarnation), never beyond the commit index. */
export function checkApplyBatch(node: NodeId, applied: number, firstIndex: number, lastIndex: number, commit: number): void {
  if (firstIndex !== applied + 1) {
    violated("apply-order", `${node} applied up to ${applied} but is handed entries from ${firstIndex}`);
  }
  if (lastIndex > commit) violated("apply-order", `${node} is handed entry ${lastIndex} beyond commit ${commit}`);
}

/** Commit index: monotonic within an incarnation, never below what was durable, never beyond the log. */
export function checkCommit(node: NodeId, previous: number, commit: number, durableLastIndex: number): void {
  if (commit < previous) violated("commit-index", `${node} commit index went back from ${previous} to ${commit}`);
  if (commit > durableLastIndex) {
    violated("commit-index", `${node} commit index ${commit} beyond its durable log (last index ${durableLastIndex})`);
  }
}
