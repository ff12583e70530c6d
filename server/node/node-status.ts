/**
 * @module The consensus part of `/api/v1/status`: role, term, leader, commit and applied index,
 * membership, and per peer the leader's replication progress (match index, lag) beside the link's
 * health (connected, last contact, queued and dropped messages).
 */
import type { RaftDriver } from "./raft-driver.ts";
import type { Transport } from "../transport/transport.ts";
import type { ReplicatedState } from "../state/replicated-state.ts";

export interface PeerStatus {
  readonly address: string | null;
  readonly connected: boolean;
  readonly lastContactAgoMs: number | null;
  readonly queuedMessages: number;
  readonly dropped: number;
  readonly reconnects: number;
  /** Leader only: replication progress. */
  readonly matchIndex: number | null;
  readonly lagEntries: number | null;
  readonly progressState: string | null;
  readonly learner: boolean;
}

export function describeStatus(parts: { driver: RaftDriver; transport: Transport; state: ReplicatedState }) {
  const raft = parts.driver.status();
  const links = parts.transport.stats();
  const now = Date.now();
  const peers: Record<string, PeerStatus> = {};
  for (const id of [...raft.confState.voters, ...raft.confState.learners]) {
    if (id === raft.id) continue;
    const link = links.get(id);
    const progress = raft.progress.get(id);
    peers[id] = {
      address: parts.state.members.get(id) ?? null,
      connected: link?.connected ?? false,
      lastContactAgoMs: link?.lastContactMs == null ? null : Math.max(0, now - link.lastContactMs),
      queuedMessages: link?.queuedMessages ?? 0,
      dropped: link?.dropped ?? 0,
      reconnects: link?.reconnects ?? 0,
      matchIndex: progress?.match ?? null,
      lagEntries: progress === undefined ? null : Math.max(0, raft.lastIndex - progress.match),
      progressState: progress?.state ?? null,
      learner: raft.confState.learners.includes(id),
    };
  }
  return {
    raft: {
      role: raft.role,
      term: raft.term,
      leader: raft.leader,
      commit: raft.commit,
      applied: raft.applied,
      lastIndex: raft.lastIndex,
      voters: raft.confState.voters,
      learners: raft.confState.learners,
      peers,
      stats: { ...parts.driver.stats },
    },
  };
}
