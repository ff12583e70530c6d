/**
 * @module Majority arithmetic over the voters (etcd-io/raft `quorum/majority.go`), single
 * configuration only since membership changes one server at a time (thesis §4.1). Learners never
 * appear here: they neither vote nor count toward commitment.
 */
import { assert } from "../assert.ts";
import type { NodeId } from "./types.ts";

export function majority(voterCount: number): number {
  assert(voterCount >= 1, "a quorum needs at least one voter");
  return Math.floor(voterCount / 2) + 1;
}

/** Reused scratch space: commit is computed on every append ack, so avoid allocating each time. */
const scratch: number[] = [];

/**
 * The highest index acknowledged by a majority of voters (Raft §5.3): sort the voters' match
 * indexes descending, take the majority-th. O(v log v) with v ≤ a handful.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  assert(voters.length >= 1, "commit needs at least one voter");
  scratch.length = voters.length;
  for (let i = 0; i < voters.length; i++) scratch[i] = matchOf(voters[i] as NodeId);
  // Insertion sort, descending: v is tiny, and this avoids a comparator closure per call.
  for (let i = 1; i < scratch.length; i++) {
    const value = scratch[i] as number;
    let j = i - 1;
    while (j >= 0 && (scratch[j] as number) < value) {
      scratch[j + 1] = scratch[j] as number;
      j -= 1;
    }
    scratch[j + 1] = value;
  }
  const index = scratch[majority(voters.length) - 1];
  assert(index !== undefined && index >= 0, "majority match index exists");
  return index;
}

export type VoteResult = "won" | "lost" | "pending";

/** Tally of an election (Raft §5.2): won on a majority of grants, lost on a majority of rejects. */
export function tallyVotes(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted += 1;
    else if (vote === false) rejected += 1;
  }
  const needed = majority(voters.length);
  assert(granted + rejected <= voters.length, "at most one vote per voter");
  if (granted >= needed) return "won";
  if (rejected >= needed) return "lost";
  return "pending";
}

/** Whether `acked` (a predicate over voters) covers a majority: CheckQuorum and ReadIndex. */
export function hasQuorum(voters: readonly NodeId[], acked: (id: NodeId) => boolean): boolean {
  let count = 0;
  for (const id of voters) if (acked(id)) count += 1;
  return count >= majority(voters.length);
}
