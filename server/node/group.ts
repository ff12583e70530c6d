/**
 * @module This node's view of the HA group: proposals and linearizable read barriers that work on
 * any node (run locally on the leader, forwarded over the peer link otherwise), the plan of peer
 * links (replicated members ∩ Raft configuration), and membership changes (join as a learner, catch
 * up, then vote; or leave).
 *
 * Every call has a deadline. Retrying is safe until a request reached the leader; after that a
 * timeout means "outcome unknown" and says so, never a silent retry that could apply twice.
 */
import { encodeCommand } from "../state/command-codec.ts";
import type { ReplicatedState, ApplyResult } from "../state/replicated-state.ts";
import type { Transport, AppRequest } from "../transport/transport.ts";
import type { NodeId } from "../raft/types.ts";
import type { Logger } from "../log/logger.ts";
import type { RaftDriver, ReadyChanges } from "./raft-driver.ts";
import { MembershipError, NotLeaderError, ProposalDroppedError, ProposalLostError, ProposalOutcomeUnknownError } from "./driver-errors.ts";
import { decodeForwardRequest, decodeForwardResponse, encodeForwardRequest, encodeForwardResponse, type ForwardRequest, type ForwardResponse } from "./forward-protocol.ts";
import { groupLimits } from "../constants.ts";
import { assert } from "../assert.ts";

export interface GroupOptions {
  readonly nodeId: NodeId;
  readonly driver: RaftDriver;
  readonly transport: Transport;
  readonly state: ReplicatedState;
  readonly log: Logger;
  /** Founders (or, for a joiner, members to contact) from the node config. */
  readonly initialCluster: Readonly<Record<NodeId, string>>;
}

/** Transport failures that happen before a request is handed to the socket. */
const neverSent: ReadonlySet<string> = new Set(["unreachable", "overloaded", "too-large", "unknown-peer"]);

export interface Applied {
  readonly index: number;
  readonly result: ApplyResult;
}

export class Group {
  private plannedPeers = "";
  private plannedMembersVersion = -1;
  private foundersRecordedTerm = -1;
  private foundersPending = false;

  constructor(private readonly options: GroupOptions) {}

  start(): void {
    const { transport, driver } = this.options;
    transport.onMessages((messages) => driver.step(messages));
    transport.onApp((request) => this.answerForward(request));
    this.planPeers();
    transport.start();
  }

  /** Called by the driver after each Ready; re-plans only what the Ready may have changed. */
  afterReady(changes: ReadyChanges): void {
    if (changes.configuration || this.options.state.membersVersion !== this.plannedMembersVersion) this.planPeers();
    if (changes.leadership || this.foundersPending) this.maybeRecordFounders();
  }

  /** Links to every member of the Raft configuration, at its replicated (or configured) address. */
  planPeers(): void {
    const { state, initialCluster, nodeId } = this.options;
    this.plannedMembersVersion = state.membersVersion;
    const conf = this.options.driver.status().confState;
    const ids = conf.voters.length + conf.learners.length > 0 ? [...conf.voters, ...conf.learners] : Object.keys(initialCluster);
    const peers = new Map<NodeId, string>();
    for (const id of ids) {
      const address = state.members.get(id) ?? initialCluster[id];
      if (id !== nodeId && address !== undefined) peers.set(id, address);
    }
    const plan = JSON.stringify([...peers].sort());
    if (plan === this.plannedPeers) return;
    this.plannedPeers = plan;
    this.options.transport.setPeers(peers);
    this.options.log.info("peer links planned", { peers: Object.fromEntries(peers) });
  }

  /** A new leader writes the founders' addresses into the replicated members, once per term. */
  private maybeRecordFounders(): void {
    this.foundersPending = false;
    const status = this.options.driver.status();
    if (status.role !== "leader" || this.foundersRecordedTerm === status.term) return;
    this.foundersRecordedTerm = status.term;
    for (const id of status.confState.voters) {
      const address = this.options.initialCluster[id];
      if (this.options.state.members.has(id) || address === undefined) continue;
      this.options.driver.propose(encodeCommand({ kind: "member-set", nodeId: id, address })).catch(() => {
        this.foundersRecordedTerm = -1;
        this.foundersPending = true; // try again at the next Ready
      });
    }
  }

  /** The leader as this node knows it, with the address its API and peer links listen on. */
  leader(): { readonly id: NodeId; readonly address: string | null; readonly self: boolean } | null {
    const id = this.options.driver.status().leader;
    if (id === null) return null;
    return { id, address: this.options.state.members.get(id) ?? this.options.initialCluster[id] ?? null, self: id === this.options.nodeId };
  }

  members(): Array<{ id: NodeId; address: string | null; role: "voter" | "learner"; leader: boolean }> {
    const status = this.options.driver.status();
    const describe = (id: NodeId, role: "voter" | "learner") => ({
      id,
      address: this.options.state.members.get(id) ?? this.options.initialCluster[id] ?? null,
      role,
      leader: id === status.leader,
    });
    return [...status.confState.voters.map((id) => describe(id, "voter")), ...status.confState.learners.map((id) => describe(id, "learner"))];
  }

  /** Commits `data` through the leader and resolves once the leader has applied it. */
  async propose(data: Uint8Array, deadlineMs: number = groupLimits.requestDeadlineMs): Promise<Applied> {
    const response = await this.untilLeader({ op: "propose", data }, deadlineMs);
    return { index: response.index, result: response.error === null ? { index: response.index, ok: true } : { index: response.index, ok: false, error: response.error } };
  }

  /** Resolves once this node has applied `index` (e.g. to read what a proposal it made produced). */
  waitApplied(index: number, deadlineMs: number = groupLimits.requestDeadlineMs): Promise<void> {
    return withDeadline(this.options.driver.waitApplied(index), deadlineMs);
  }

  /** Raft thesis §6.4: an index this node has applied that covers every write acknowledged so far. */
  async readBarrier(deadlineMs: number = groupLimits.requestDeadlineMs): Promise<number> {
    return (await this.untilLeader({ op: "read-index" }, deadlineMs)).index;
  }

  private async untilLeader(request: ForwardRequest, deadlineMs: number): Promise<ForwardResponse & { status: "ok" }> {
    const deadline = performance.now() + deadlineMs;
    for (let attempt = 0; attempt < groupLimits.leaderAttemptsMax; attempt++) {
      const remainingMs = deadline - performance.now();
      if (remainingMs <= 0) break;
      const response = await this.tryOnce(request, remainingMs);
      if (response.status === "ok") {
        // A write is answered once the leader applied it (as etcd does); a read barrier must be
        // reached here, because the read that follows is served from this node's state.
        if (request.op === "read-index") await withDeadline(this.options.driver.waitApplied(response.index), deadline - performance.now());
        return response;
      }
      if (response.status === "failed") throw failure(response);
      await Bun.sleep(Math.min(groupLimits.leaderWaitStepMs, Math.max(0, deadline - performance.now())));
    }
    throw new NotLeaderError(this.options.driver.status().leader);
  }

  /** Runs the request locally if this node leads, else forwards it to the leader it knows. */
  private async tryOnce(request: ForwardRequest, remainingMs: number): Promise<ForwardResponse> {
    const hint = this.options.driver.knownLeader;
    const local: ForwardResponse =
      hint !== null && hint !== this.options.nodeId ? { status: "not-leader", leader: hint } : await this.runLocally(request, remainingMs);
    if (local.status !== "not-leader" || local.leader === null || local.leader === this.options.nodeId) return local;
    const timeoutMs = Math.max(1, Math.floor(Math.min(remainingMs, groupLimits.forwardTimeoutMs)));
    const reply = await this.options.transport.request(local.leader, encodeForwardRequest(request), timeoutMs);
    if (reply.ok) return decodeForwardResponse(reply.body);
    // Only these mean the request never left this node; after any other failure the leader may have
    // appended it, and trying again could apply it twice.
    if (neverSent.has(reply.reason)) return { status: "not-leader", leader: null };
    throw new ProposalOutcomeUnknownError(`leader ${local.leader} did not answer (${reply.reason})`);
  }

  private async runLocally(request: ForwardRequest, remainingMs: number): Promise<ForwardResponse> {
    const { driver } = this.options;
    try {
      if (request.op === "read-index") return { status: "ok", index: await withDeadline(driver.readIndex(), remainingMs), error: null };
      const result = await withDeadline(driver.propose(request.data), remainingMs);
      return { status: "ok", index: result.index, error: result.ok ? null : result.error };
    } catch (error) {
      if (error instanceof NotLeaderError) return { status: "not-leader", leader: error.leader };
      if (error instanceof ProposalDroppedError) return { status: "failed", reason: "dropped", message: error.message };
      if (error instanceof ProposalLostError) return { status: "failed", reason: "lost", message: error.message };
      if (error instanceof ProposalOutcomeUnknownError) return { status: "failed", reason: "unknown", message: error.message };
      throw error;
    }
  }

  /** The leader's side of a forwarded request. A follower asked: answer, never forward again. */
  private async answerForward(request: AppRequest): Promise<Uint8Array> {
    const decoded = decodeForwardRequest(request.body);
    return encodeForwardResponse(await this.runLocally(decoded, groupLimits.requestDeadlineMs));
  }

  /**
   * Adds a node: record its address, add it as a learner, wait until it has caught up with the
   * leader's commit index (a snapshot if it is far behind), then make it a voter (Raft thesis §4.2.1:
   * a new server catches up before it counts toward quorums).
   */
  async addNode(nodeId: NodeId, address: string): Promise<void> {
    const { driver } = this.options;
    assert(nodeId !== this.options.nodeId || driver.status().confState.voters.includes(nodeId), "a node cannot add itself");
    await this.propose(encodeCommand({ kind: "member-set", nodeId, address }));
    const conf = driver.status().confState;
    if (!conf.voters.includes(nodeId) && !conf.learners.includes(nodeId)) await this.changeMembership({ type: "add-learner", nodeId });
    await this.untilCaughtUp(nodeId);
    if (!driver.status().confState.voters.includes(nodeId)) await this.changeMembership({ type: "add-voter", nodeId });
  }

  async removeNode(nodeId: NodeId): Promise<void> {
    const conf = this.options.driver.status().confState;
    if (conf.voters.includes(nodeId) || conf.learners.includes(nodeId)) await this.changeMembership({ type: "remove-node", nodeId });
    await this.propose(encodeCommand({ kind: "member-remove", nodeId }));
  }

  /** Membership changes run on the leader only (they need its progress view); callers go there. */
  private async changeMembership(change: Parameters<RaftDriver["proposeConfChange"]>[0]): Promise<void> {
    const deadline = performance.now() + groupLimits.requestDeadlineMs;
    for (let attempt = 0; attempt < groupLimits.leaderAttemptsMax && performance.now() < deadline; attempt++) {
      try {
        const result = await withDeadline(this.options.driver.proposeConfChange(change), deadline - performance.now());
        if (!result.ok) throw new ProposalDroppedError(result.error);
        return;
      } catch (error) {
        // One change at a time: the previous one may still be committing. Wait and try again.
        if (!(error instanceof ProposalDroppedError)) throw error;
        await Bun.sleep(groupLimits.leaderWaitStepMs);
      }
    }
    throw new ProposalDroppedError(`membership change ${change.type} ${change.nodeId} did not go through in time`);
  }

  /**
   * Thesis §4.2.1: a learner is promoted only once it holds everything the leader had committed
   * when it was added, and has been heard from; otherwise a silent or unreachable newcomer would
   * enlarge the quorum with a vote that never comes.
   */
  private async untilCaughtUp(nodeId: NodeId): Promise<void> {
    const target = this.options.driver.status().commit;
    const started = performance.now();
    while (performance.now() - started < groupLimits.catchUpDeadlineMs) {
      const status = this.options.driver.status();
      if (status.role !== "leader") throw new NotLeaderError(status.leader);
      const progress = status.progress.get(nodeId);
      if (progress !== undefined && progress.match > 0 && progress.match >= target && progress.recentActive) return;
      if ((progress?.match ?? 0) === 0 && performance.now() - started > groupLimits.learnerContactMs) {
        const address = this.options.state.members.get(nodeId) ?? "its address";
        throw new MembershipError(`${nodeId} was added as a learner but never answered at ${address}; it stays a learner (is it running with --join?)`);
      }
      await Bun.sleep(groupLimits.leaderWaitStepMs);
    }
    throw new MembershipError(`${nodeId} did not catch up within ${groupLimits.catchUpDeadlineMs} ms; it stays a learner`);
  }
}

function failure(response: ForwardResponse & { status: "failed" }): Error {
  switch (response.reason) {
    case "dropped":
      return new ProposalDroppedError(response.message);
    case "lost":
      return new ProposalLostError(response.message);
    case "unknown":
      return new ProposalOutcomeUnknownError(response.message);
  }
}

async function withDeadline<T>(promise: Promise<T>, remainingMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProposalOutcomeUnknownError(`no outcome within the request deadline`)), Math.max(0, remainingMs));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
