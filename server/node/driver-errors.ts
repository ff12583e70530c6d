/**
 * @module What a proposal or read can come back with besides success. Each maps to one HTTP status
 * in the API layer; none of them means "maybe applied" except ProposalOutcomeUnknown.
 */
import type { NodeId } from "../raft/types.ts";

export class NotLeaderError extends Error {
  override readonly name = "NotLeaderError";
  constructor(readonly leader: NodeId | null) {
    super(leader === null ? "no leader is known right now" : `not the leader; the leader is ${leader}`);
  }
}

/** The core refused the request (flow control, transfer in progress...): nothing was appended. */
export class ProposalDroppedError extends Error {
  override readonly name = "ProposalDroppedError";
}

/** Another leader's entry took the proposal's log slot: it will never be applied. */
export class ProposalLostError extends Error {
  override readonly name = "ProposalLostError";
}

/** The node can no longer tell whether the proposal was applied (snapshot install, shutdown). */
export class ProposalOutcomeUnknownError extends Error {
  override readonly name = "ProposalOutcomeUnknownError";
}

/** A membership change stopped partway for a reason the operator must act on (named in the message). */
export class MembershipError extends Error {
  override readonly name = "MembershipError";
}
