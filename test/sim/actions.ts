/**
 * @module Scenario actions: the faults (crashes, pauses, partitions, heals) and the client traffic
 * (proposals, reads, membership changes, leadership transfers, shell snapshots) the seed injects
 * between ticks and deliveries. Each returns whether it did anything, for the per-kind counts.
 */
import { unreachable } from "../../server/assert.ts";
import type { ConfChange, NodeId, ProposeResult } from "../../server/raft/types.ts";
import type { Proposal } from "./client-ledger.ts";
import type { Cluster } from "./cluster.ts";
import { nodesMax } from "./cluster.ts";
import { crashPoints, type NodeHarness } from "./node-harness.ts";
import type { ActionKind } from "./scenario.ts";
import { confChangeCode, encodePayload } from "./state-machine.ts";

export function runAction(cluster: Cluster, kind: ActionKind): boolean {
  switch (kind) {
    case "propose":
      return propose(cluster);
    case "read":
      return read(cluster);
    case "membership":
      return changeMembership(cluster);
    case "compact":
      return compact(cluster);
    case "transfer":
      return transfer(cluster);
    case "crash":
      return crash(cluster);
    case "pause":
      return pause(cluster);
    case "partition-symmetric":
      return partitionSymmetric(cluster);
    case "partition-asymmetric":
      return partitionAsymmetric(cluster);
    case "partition-one-way":
      return partitionOneWay(cluster);
    case "heal":
      cluster.network.heal();
      return true;
    default:
      return unreachable(kind);
  }
}

function randomAlive(cluster: Cluster): NodeHarness | null {
  const alive = cluster.aliveNodes().filter((node) => node.pausedUntil <= cluster.now);
  return alive.length === 0 ? null : cluster.rng.pick(alive);
}

/** The victim of a fault: often the leader (leader churn is where Raft bugs live), else random. */
function victim(cluster: Cluster): NodeHarness | null {
  if (cluster.rng.chance(cluster.scenario.leaderTargetProbability)) {
    const leader = cluster.leader();
    if (leader !== null && leader.node.pausedUntil <= cluster.now) return leader.node;
  }
  return randomAlive(cluster);
}

/** A client writes to a random node and follows one not-leader redirect, like a real client. */
export function propose(cluster: Cluster): boolean {
  const node = clientTarget(cluster);
  return node !== null && proposeAt(cluster, node) !== null;
}

/** A random reachable node, or the leader it names (one not-leader redirect, as a real client). */
function clientTarget(cluster: Cluster): NodeHarness | null {
  const node = randomAlive(cluster);
  if (node === null || node.raw === null || node.isLeader || !cluster.rng.chance(0.8)) return node;
  const leader = node.raw.status().leader;
  const target = leader === null ? undefined : cluster.nodes.get(leader);
  return target !== undefined && target.alive && target.pausedUntil <= cluster.now ? target : node;
}

/** Propose one fresh payload at `node`; returns its proposal id if the node accepted it. */
export function proposeAt(cluster: Cluster, node: NodeHarness): number | null {
  const raw = node.raw;
  if (raw === null) return null;
  const ledger = cluster.ledger;
  const id = ledger.nextProposalId;
  ledger.nextProposalId += 1;
  const result = raw.propose(encodePayload(id, cluster.rng.int(24)));
  cluster.trace?.(`  propose ${id} at ${node.id}: ${JSON.stringify(result)}`);
  recordProposal(cluster, node, result, id);
  cluster.settle(node);
  return result.ok ? id : null;
}

function recordProposal(cluster: Cluster, node: NodeHarness, result: ProposeResult, code: number): void {
  if (!result.ok) return;
  const proposal: Proposal = { code, index: result.index, term: result.term, node: node.id, state: "pending" };
  cluster.ledger.accept(proposal, cluster.checker.committedAt(result.index));
}

function read(cluster: Cluster): boolean {
  const node = clientTarget(cluster);
  if (node === null || node.raw === null) return false;
  const ledger = cluster.ledger;
  const ctx = `r${ledger.nextReadId}`;
  ledger.nextReadId += 1;
  ledger.reads.set(ctx, { node: node.id, committedAtIssue: cluster.checker.committedIndexMax });
  node.raw.readIndex(ctx);
  cluster.settle(node);
  return true;
}

function compact(cluster: Cluster): boolean {
  const node = randomAlive(cluster);
  if (node === null || !node.compact()) return false;
  node.observe();
  return true;
}

function transfer(cluster: Cluster): boolean {
  const leader = cluster.leader();
  if (leader === null || leader.node.raw === null) return false;
  const others = leader.status.confState.voters.filter((id) => id !== leader.node.id);
  if (others.length === 0) return false;
  leader.node.raw.transferLeadership(cluster.rng.pick(others));
  cluster.settle(leader.node);
  return true;
}

/**
 * One server at a time (thesis §4.1): promote (or now and then drop) a learner, else add a learner
 * (a brand-new node that learns the configuration from the leader's log or snapshot), else remove a
 * voter, possibly the leader itself. A removed node keeps running and may try to disrupt.
 */
function changeMembership(cluster: Cluster): boolean {
  const leader = cluster.leader();
  if (leader === null || leader.node.raw === null) return false;
  if (cluster.ledger.lastConfChange?.state === "pending") return false;
  const { voters, learners } = leader.status.confState;
  const rng = cluster.rng;
  let change: ConfChange;
  const nextId = `n${cluster.nodes.size + 1}`;
  if (learners.length > 0) change = { type: rng.chance(0.8) ? "add-voter" : "remove-node", nodeId: rng.pick(learners) };
  else if (cluster.nodes.size < nodesMax && voters.length < 5 && rng.chance(0.6)) change = { type: "add-learner", nodeId: nextId };
  else if (voters.length >= 2) change = { type: "remove-node", nodeId: rng.pick(voters) };
  else return false;
  const result = leader.node.raw.proposeConfChange(change);
  cluster.trace?.(`  conf change ${JSON.stringify(change)} at ${leader.node.id}: ${JSON.stringify(result)}`);
  recordProposal(cluster, leader.node, result, confChangeCode(change));
  if (result.ok) cluster.ledger.lastConfChange = cluster.ledger.latest;
  if (result.ok && change.type === "add-learner") cluster.addNode(nextId, null).observe();
  cluster.settle(leader.node);
  return result.ok;
}

/** A follower that has voted in its current term but knows no leader yet: mid-election. */
function midElectionVoter(cluster: Cluster): NodeHarness | null {
  const voters = cluster.aliveNodes().filter((node) => {
    const status = node.raw?.status();
    return status !== undefined && status.role === "follower" && status.leader === null && status.votedFor !== null && status.votedFor !== node.id;
  });
  return voters.length === 0 ? null : cluster.rng.pick(voters);
}

function crash(cluster: Cluster): boolean {
  const voter = cluster.rng.chance(cluster.scenario.voterTargetProbability) ? midElectionVoter(cluster) : null;
  const node = voter ?? victim(cluster);
  if (node === null) return false;
  const rng = cluster.rng;
  if (rng.chance(cluster.scenario.crashInReadyProbability)) {
    // Strike inside the node's next Ready: whatever that Ready had not yet made durable is lost.
    node.crashArmed = rng.pick(crashPoints);
    node.crashAfterApplies = rng.int(3);
  } else {
    node.crash();
  }
  return true;
}

function pause(cluster: Cluster): boolean {
  const node = victim(cluster);
  if (node === null) return false;
  node.pausedUntil = cluster.now + 1 + cluster.rng.int(cluster.scenario.pauseMax);
  return true;
}

function shuffledIds(cluster: Cluster): NodeId[] {
  const ids = [...cluster.nodes.keys()];
  for (let i = ids.length - 1; i > 0; i -= 1) {
    const j = cluster.rng.int(i + 1);
    const a = ids[i] as NodeId;
    ids[i] = ids[j] as NodeId;
    ids[j] = a;
  }
  return ids;
}

function partitionSymmetric(cluster: Cluster): boolean {
  const ids = shuffledIds(cluster);
  if (ids.length < 2) return false;
  const split = 1 + cluster.rng.int(ids.length - 1);
  cluster.network.partition(ids.slice(0, split), ids.slice(split));
  return true;
}

/** Random links cut in one direction each: A hears B while B does not hear A. */
function partitionAsymmetric(cluster: Cluster): boolean {
  const ids = [...cluster.nodes.keys()];
  if (ids.length < 2) return false;
  for (const from of ids) {
    for (const to of ids) if (from !== to && cluster.rng.chance(0.3)) cluster.network.cut(from, to);
  }
  return true;
}

/** One node goes deaf (hears nothing) or mute (is heard by nobody). */
function partitionOneWay(cluster: Cluster): boolean {
  const ids = [...cluster.nodes.keys()];
  const target = victim(cluster);
  if (ids.length < 2 || target === null) return false;
  const deaf = cluster.rng.chance(0.5);
  for (const other of ids) {
    if (other === target.id) continue;
    if (deaf) cluster.network.cut(other, target.id);
    else cluster.network.cut(target.id, other);
  }
  return true;
}
