/**
 * @module A tiny in-test network for the Raft paper tests: RawNodes keyed by id, an instant
 * "persist" (advance right away), delivery of every message until the group is quiet, and cut links.
 * The seeded fault-injecting simulator lives in test/sim/; this is only enough to state §-claims.
 */
import { assert } from "../../server/assert.ts";
import { raftLimits } from "../../server/constants.ts";
import { seededRng } from "../../server/raft/prng.ts";
import { RawNode } from "../../server/raft/raw-node.ts";
import type { Entry, Message, NodeId, RaftOptions, ReadState, Ready } from "../../server/raft/types.ts";

export type NodeOverrides = Partial<Omit<RaftOptions, "id">>;

export function nodeOptions(id: NodeId, overrides: NodeOverrides = {}, seed = 1): RaftOptions {
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: false,
    checkQuorum: false,
    limits: raftLimits,
    rng: seededRng(seed + id.charCodeAt(id.length - 1) * 7919),
    ...overrides,
  };
}

export class Network {
  readonly nodes = new Map<NodeId, RawNode>();
  readonly applied = new Map<NodeId, Entry[]>();
  readonly readStates = new Map<NodeId, ReadState[]>();
  /** Every message delivered or dropped, for assertions on traffic. */
  readonly log: Message[] = [];
  /** Links cut as "from→to"; isolated nodes neither send nor receive. */
  private readonly cut = new Set<string>();
  private readonly isolated = new Set<NodeId>();
  /** Optional filter: return false to drop a message. */
  filter: ((m: Message) => boolean) | null = null;

  /** A group founded by `ids` (bootstrapVoters), with `overrides` applied to every node. */
  static bootstrap(ids: readonly NodeId[], overrides: NodeOverrides = {}): Network {
    const net = new Network();
    for (const id of ids) net.add(id, new RawNode(nodeOptions(id, { bootstrapVoters: ids, ...overrides })));
    net.stabilize();
    return net;
  }

  add(id: NodeId, node: RawNode): void {
    this.nodes.set(id, node);
    if (!this.applied.has(id)) this.applied.set(id, []);
    if (!this.readStates.has(id)) this.readStates.set(id, []);
  }

  node(id: NodeId): RawNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}→${b}`);
    this.cut.add(`${b}→${a}`);
  }

  heal(): void {
    this.cut.clear();
    this.isolated.clear();
    this.filter = null;
  }

  /** Collect one node's Ready, "persist" it instantly, record applied entries, return messages. */
  drain(id: NodeId): Ready | null {
    const node = this.node(id);
    if (!node.hasReady()) return null;
    const rd = node.ready();
    this.applied.get(id)?.push(...rd.committedEntries);
    this.readStates.get(id)?.push(...rd.readStates);
    node.advance();
    return rd;
  }

  private deliverable(m: Message): boolean {
    if (this.isolated.has(m.from) || this.isolated.has(m.to)) return false;
    if (this.cut.has(`${m.from}→${m.to}`)) return false;
    if (!this.nodes.has(m.to)) return false;
    return this.filter === null || this.filter(m);
  }

  /** Deliver messages until no node has anything more to say. Bounded. */
  stabilize(roundsMax = 10_000): void {
    for (let round = 0; round < roundsMax; round++) {
      const messages: Message[] = [];
      for (const id of this.nodes.keys()) {
        const rd = this.drain(id);
        if (rd !== null) messages.push(...rd.messages);
      }
      if (messages.length === 0 && ![...this.nodes.values()].some((n) => n.hasReady())) return;
      for (const m of messages) {
        this.log.push(m);
        if (this.deliverable(m)) this.node(m.to).step(m);
      }
    }
    assert(false, "network did not stabilize");
  }

  /** Tick `id` until it leaves the follower role (it campaigns), then let the election finish. */
  campaign(id: NodeId): void {
    const node = this.node(id);
    for (let i = 0; i < 100 && node.status().role === "follower"; i++) node.tick();
    assert(node.status().role !== "follower", `${id} did not campaign`);
    this.stabilize();
  }

  tickAll(ticks: number): void {
    for (let t = 0; t < ticks; t++) {
      for (const node of this.nodes.values()) node.tick();
      this.stabilize();
    }
  }

  leader(): NodeId | null {
    for (const [id, node] of this.nodes) if (node.status().role === "leader" && !this.isolated.has(id)) return id;
    return null;
  }

  propose(id: NodeId, text: string): ReturnType<RawNode["propose"]> {
    const result = this.node(id).propose(new TextEncoder().encode(text));
    this.stabilize();
    return result;
  }

  /** Data of the normal, non-empty entries `id` applied, decoded as text. */
  appliedTexts(id: NodeId): string[] {
    const entries = this.applied.get(id) ?? [];
    return entries.filter((e) => e.type === "normal" && e.data.length > 0).map((e) => new TextDecoder().decode(e.data));
  }
}
