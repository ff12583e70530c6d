/**
 * @module What the simulated clients were told. Each accepted proposal is remembered with the
 * (index, term) the leader gave it; the first apply at that index resolves it: committed if the
 * entry there is the proposal's own, dropped (overwritten) otherwise. Committed client payloads are
 * acknowledged writes that must never be lost; reads record the highest acknowledged index at the
 * moment they were issued, which their ReadState must not fall behind (thesis §6.4).
 */
import type { NodeId } from "../../server/raft/types.ts";
import { violated } from "./checkers.ts";

export interface Proposal {
  readonly code: number;
  readonly index: number;
  readonly term: number;
  readonly node: NodeId;
  state: "pending" | "committed" | "dropped";
}

export interface ReadRequest {
  readonly node: NodeId;
  readonly committedAtIssue: number;
}

export class ClientLedger {
  private readonly pendingByIndex = new Map<number, Proposal[]>();
  /** Committed client payloads: acknowledged, so every member must end up with them. */
  readonly acknowledged: Proposal[] = [];
  readonly reads = new Map<string, ReadRequest>();
  /** The most recently accepted proposal, and the last accepted membership change (one at a time). */
  latest: Proposal | null = null;
  lastConfChange: Proposal | null = null;
  nextProposalId = 1;
  nextReadId = 1;
  accepted = 0;
  committed = 0;
  dropped = 0;
  readsServed = 0;
  pendingCount = 0;
  acceptedIndexMax = 0;

  /** `committedNow`: what is already applied at the index (a stale leader may hand out old indexes). */
  accept(proposal: Proposal, committedNow: { readonly term: number; readonly code: number } | undefined): void {
    const list = this.pendingByIndex.get(proposal.index);
    if (list === undefined) this.pendingByIndex.set(proposal.index, [proposal]);
    else list.push(proposal);
    this.latest = proposal;
    this.accepted += 1;
    this.pendingCount += 1;
    this.acceptedIndexMax = Math.max(this.acceptedIndexMax, proposal.index);
    if (committedNow !== undefined) this.resolve(proposal.index, committedNow.term, committedNow.code);
  }

  /** The first apply of `entry` anywhere: resolve every proposal that was accepted at its index. */
  resolve(index: number, term: number, code: number): void {
    const list = this.pendingByIndex.get(index);
    if (list === undefined) return;
    this.pendingByIndex.delete(index);
    for (const proposal of list) {
      this.pendingCount -= 1;
      if (proposal.term !== term) {
        proposal.state = "dropped";
        this.dropped += 1;
        continue;
      }
      if (proposal.code !== code) {
        violated(
          "log-matching",
          `proposal ${proposal.code} accepted at (${index}, ${term}) by ${proposal.node}, but that entry holds ${code}`,
        );
      }
      proposal.state = "committed";
      this.committed += 1;
      if (code > 0) this.acknowledged.push(proposal);
    }
  }

  pendingIndexes(): number[] {
    return [...this.pendingByIndex.keys()];
  }
}
