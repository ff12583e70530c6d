/**
 * @module A small seeded safety fuzz of the core (not the simulator in test/sim/): random ticks,
 * message loss, duplication and reordering, partitions, proposals, conf changes, compaction and
 * crash-restarts from "storage" (each Ready is persisted instantly). Checks after every step:
 * election safety (§5.2: one leader per term) and state machine safety (§5.4.3: every node applies
 * the same entry at each index). Then heals and checks that the group makes progress (liveness).
 */
import { expect, test } from "bun:test";
import { raftLimits } from "../../server/constants.ts";
import { seededRng } from "../../server/raft/prng.ts";
import { RawNode } from "../../server/raft/raw-node.ts";
import type { Entry, HardState, Message, NodeId, Rng, Snapshot } from "../../server/raft/types.ts";

interface Storage {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
  applied: number;
}

class Cluster {
  readonly nodes = new Map<NodeId, RawNode>();
  readonly storage = new Map<NodeId, Storage>();
  inflight: Message[] = [];
  readonly leaderOfTerm = new Map<number, NodeId>();
  readonly appliedAt = new Map<number, string>();
  readonly down = new Set<NodeId>();
  seq = 0;

  constructor(
    readonly ids: readonly NodeId[],
    readonly rng: Rng,
    readonly flags: { preVote: boolean; checkQuorum: boolean },
  ) {
    for (const id of ids) {
      this.storage.set(id, { hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
      this.nodes.set(id, this.make(id, true));
    }
  }

  private make(id: NodeId, fresh: boolean): RawNode {
    const st = this.storage.get(id) as Storage;
    const base = { id, electionTicks: 10, heartbeatTicks: 2, ...this.flags, rng: seededRng(this.rng.nextInt(1 << 30)) };
    const limits = { ...raftLimits, inflightMessagesMax: 4, appendBytesMax: 64 };
    if (fresh) return new RawNode({ ...base, limits, bootstrapVoters: this.ids.slice(0, 3) });
    const persisted = { hardState: st.hardState, snapshot: st.snapshot, entries: [...st.entries], applied: st.applied };
    return new RawNode({ ...base, limits, persisted });
  }

  restart(id: NodeId): void {
    this.nodes.set(id, this.make(id, false));
  }

  node(id: NodeId): RawNode {
    return this.nodes.get(id) as RawNode;
  }

  /** Persist, apply and collect messages of one node's Ready, checking safety on the way. */
  process(id: NodeId): void {
    const node = this.node(id);
    const st = this.storage.get(id) as Storage;
    while (node.hasReady()) {
      const rd = node.ready();
      if (rd.snapshot !== null) {
        st.snapshot = rd.snapshot;
        st.entries = []; // a snapshot from the leader replaces the whole log (its tail may conflict)
        st.applied = rd.snapshot.meta.index;
      }
      const first = rd.entries[0];
      if (first !== undefined) st.entries = [...st.entries.filter((e) => e.index < first.index), ...rd.entries];
      if (rd.hardState !== null) st.hardState = rd.hardState;
      for (const m of rd.messages) this.inflight.push(m);
      for (const e of rd.committedEntries) this.apply(id, e);
      const last = rd.committedEntries[rd.committedEntries.length - 1];
      if (last !== undefined) st.applied = last.index;
      this.stepDuringFsync(id);
      node.advance();
      const status = node.status();
      if (status.role === "leader") {
        const prior = this.leaderOfTerm.get(status.term);
        expect(prior === undefined || prior === id).toBe(true); // §5.2 election safety
        this.leaderOfTerm.set(status.term, id);
      }
    }
  }

  /** An async shell keeps stepping messages while it waits for its fsync: do that sometimes. */
  private stepDuringFsync(id: NodeId): void {
    if (this.rng.nextInt(4) !== 0 || this.down.has(id)) return;
    const i = this.inflight.findIndex((m) => m.to === id && !this.down.has(m.from));
    if (i < 0) return;
    const [m] = this.inflight.splice(i, 1);
    if (m !== undefined) this.node(id).step(m);
  }

  private apply(id: NodeId, e: Entry): void {
    const key = `${e.term}/${e.type}/${new TextDecoder().decode(e.data)}`;
    const prior = this.appliedAt.get(e.index);
    if (prior !== undefined && prior !== key) throw new Error(`${id} applied ${key} at ${e.index}, another applied ${prior}`);
    this.appliedAt.set(e.index, key);
  }

  compact(id: NodeId): void {
    const node = this.node(id);
    const st = this.storage.get(id) as Storage;
    const index = node.status().applied;
    if (index <= (st.snapshot?.meta.index ?? 0)) return;
    node.compact({ index, data: new TextEncoder().encode(`image@${index}`) });
    const snapshot = node.lastSnapshot();
    expect(snapshot?.meta.index).toBe(index);
    st.snapshot = snapshot;
    st.entries = st.entries.filter((e) => e.index > index);
  }

  leader(): NodeId | null {
    let best: NodeId | null = null;
    let term = -1;
    for (const [id, node] of this.nodes) {
      const s = node.status();
      if (s.role === "leader" && !this.down.has(id) && s.term > term) [best, term] = [id, s.term];
    }
    return best;
  }
}

function randomStep(c: Cluster, rng: Rng): void {
  const ids = c.ids;
  const pick = (): NodeId => ids[rng.nextInt(ids.length)] as NodeId;
  const roll = rng.nextInt(100);
  if (roll < 30) c.node(pick()).tick();
  else if (roll < 70 && c.inflight.length > 0) {
    const i = rng.nextInt(c.inflight.length); // reordering: any in-flight message may go next
    const m = c.inflight[i] as Message;
    if (rng.nextInt(10) !== 0) c.inflight.splice(i, 1); // sometimes duplicated
    if (!c.down.has(m.from) && !c.down.has(m.to) && rng.nextInt(20) !== 0) c.node(m.to).step(m);
  } else if (roll < 80) {
    const leader = c.leader();
    if (leader !== null) c.node(leader).propose(new TextEncoder().encode(`p${c.seq++}`));
  } else if (roll < 82) c.restart(pick());
  else if (roll < 84) c.compact(pick());
  else if (roll < 86) {
    const id = pick();
    if (c.down.has(id)) c.down.delete(id);
    else if (c.down.size < 1) c.down.add(id);
  } else if (roll < 88) {
    const leader = c.leader();
    if (leader !== null) {
      const target = pick();
      const voters = c.node(leader).status().confState.voters;
      const type = voters.includes(target) ? (rng.nextInt(2) === 0 ? "remove-node" : "add-learner") : "add-voter";
      if (voters.length > 2 || type === "add-voter") c.node(leader).proposeConfChange({ type, nodeId: target });
    }
  } else if (roll < 89) {
    const leader = c.leader();
    if (leader !== null) c.node(leader).transferLeadership(pick());
  } else if (roll < 90) {
    const leader = c.leader();
    if (leader !== null) c.node(leader).readIndex(`r${c.seq++}`);
  }
  for (const id of ids) c.process(id);
}

/** Heal everything and run until a proposal commits on every voter (bounded). */
function liveness(c: Cluster): void {
  c.down.clear();
  let marker = -1;
  for (let round = 0; round < 3000; round++) {
    for (const id of c.ids) c.node(id).tick();
    for (let i = 0; i < 200 && c.inflight.length > 0; i++) {
      const batch = c.inflight;
      c.inflight = [];
      for (const m of batch) c.node(m.to).step(m);
      for (const id of c.ids) c.process(id);
    }
    for (const id of c.ids) c.process(id);
    const leader = c.leader();
    if (leader === null) continue;
    if (marker < 0) {
      const r = c.node(leader).propose(new TextEncoder().encode("final"));
      if (r.ok) marker = r.index;
      continue;
    }
    const voters = c.node(leader).status().confState.voters;
    if (voters.every((id) => c.node(id).status().applied >= marker)) return;
    if (c.node(leader).status().lastIndex < marker) marker = -1; // lost with a deposed leader
  }
  throw new Error("no progress after healing");
}

for (let seed = 1; seed <= 24; seed++) {
  test(`fuzz seed ${seed}: election safety, state machine safety, then liveness`, () => {
    const rng = seededRng(seed);
    const flags = { preVote: seed % 2 === 0, checkQuorum: seed % 3 !== 0 };
    const c = new Cluster(["a", "b", "c", "d"], rng, flags);
    for (let i = 0; i < 4000; i++) randomStep(c, rng);
    liveness(c);
    expect(c.appliedAt.size).toBeGreaterThan(5);
  });
}
