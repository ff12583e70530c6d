/**
 * @module How many entries per second can the pure Raft core commit? A 3-node group in memory:
 * "persistence" is an immediate advance(), messages are delivered in order, all in one thread. The
 * leader proposes in batches; we count entries the leader hands out as committed. Target (issue):
 * ≥ 300,000 entries/s at 64 bytes on the 2-core CI machine. No I/O is measured here.
 */
import { raftLimits } from "../server/constants.ts";
import { seededRng } from "../server/raft/prng.ts";
import { RawNode } from "../server/raft/raw-node.ts";
import type { Message, NodeId } from "../server/raft/types.ts";
import { seededBytes, type Bench, type Metrics } from "./harness.ts";

const ids: readonly NodeId[] = ["n1", "n2", "n3"];
const batchEntries = 512;
const runMs = 2500;

function makeGroup(): Map<NodeId, RawNode> {
  const nodes = new Map<NodeId, RawNode>();
  ids.forEach((id, i) => {
    const options = { id, electionTicks: 10, heartbeatTicks: 1, preVote: true, checkQuorum: true };
    nodes.set(id, new RawNode({ ...options, limits: raftLimits, rng: seededRng(42 + i), bootstrapVoters: ids }));
  });
  return nodes;
}

/** One delivery round: every node's Ready is "persisted", applied and its messages delivered. */
function pump(nodes: Map<NodeId, RawNode>, leader: NodeId): number {
  let committed = 0;
  let outbox: Message[] = [];
  for (const [id, node] of nodes) {
    if (!node.hasReady()) continue;
    const rd = node.ready();
    if (id === leader) committed += rd.committedEntries.length;
    for (const m of rd.messages) outbox.push(m);
    node.advance();
  }
  for (const m of outbox) nodes.get(m.to)?.step(m);
  outbox = [];
  return committed;
}

function settle(nodes: Map<NodeId, RawNode>, leader: NodeId): number {
  let committed = 0;
  for (let round = 0; round < 1000; round++) {
    if (![...nodes.values()].some((n) => n.hasReady())) return committed;
    committed += pump(nodes, leader);
  }
  throw new Error("group did not settle");
}

function measure(entryBytes: number): number {
  const nodes = makeGroup();
  const leaderId = "n1";
  const leader = nodes.get(leaderId) as RawNode;
  while (leader.status().role !== "leader") {
    leader.tick();
    settle(nodes, leaderId);
  }
  settle(nodes, leaderId);
  const payload = seededBytes(7, entryBytes);
  let committed = 0;
  const start = performance.now();
  let now = start;
  while (now - start < runMs) {
    for (let i = 0; i < batchEntries; i++) {
      const result = leader.propose(payload);
      if (!result.ok) throw new Error(`proposal refused: ${result.reason}`);
    }
    // Pipelining: keep one batch in flight while the previous one commits.
    committed += pump(nodes, leaderId);
    committed += pump(nodes, leaderId);
    now = performance.now();
  }
  committed += settle(nodes, leaderId);
  const elapsedS = (performance.now() - start) / 1000;
  // A benchmark of a broken core is worthless: every replica must end at the leader's commit.
  const commit = leader.status().commit;
  for (const node of nodes.values()) {
    const s = node.status();
    if (s.commit !== commit || s.applied !== commit) throw new Error(`${s.id} at ${s.commit}/${s.applied}, leader at ${commit}`);
  }
  return Math.round(committed / elapsedS);
}

const bench: Bench = {
  name: "raft-core",
  async run(): Promise<Metrics> {
    measure(64); // warm-up: let the JIT see the hot paths once
    return { entries_per_s_64b: measure(64), entries_per_s_1kib: measure(1024) };
  },
};

export default bench;
