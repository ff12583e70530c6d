/**
 * @module The simulated world: nodes, the network between them, the agenda of timed events, the
 * checkers and the client ledger. It turns one event into one step (a tick, a delivery, a restart
 * or a scenario action) and, after every step, lets the checkers look at the node it touched.
 */
import { assert, unreachable } from "../../server/assert.ts";
import type { Entry, Message, NodeId, RaftStatus, ReadState } from "../../server/raft/types.ts";
import { SafetyChecker, violated } from "./checkers.ts";
import { ClientLedger } from "./client-ledger.ts";
import { EventQueue } from "./event-queue.ts";
import { Network } from "./network.ts";
import { NodeHarness, type HarnessHooks } from "./node-harness.ts";
import { SimRng, deriveSeed } from "./prng.ts";
import { entryCode } from "./state-machine.ts";
import type { Scenario } from "./scenario.ts";

export type SimEvent =
  | { readonly kind: "tick"; readonly node: NodeId }
  | { readonly kind: "deliver"; readonly message: Message }
  | { readonly kind: "restart"; readonly node: NodeId; readonly incarnation: number }
  | { readonly kind: "action" };

/** Simulated node ids are n1..n9: founders first, then joiners. */
export const nodesMax = 9;

export class Cluster implements HarnessHooks {
  readonly rng: SimRng;
  readonly queue = new EventQueue<SimEvent>();
  readonly network: Network;
  readonly checker = new SafetyChecker();
  readonly ledger = new ClientLedger();
  readonly nodes = new Map<NodeId, NodeHarness>();
  now = 0;
  /** When false (liveness phase) crashed nodes are not scheduled for restart by the fault model. */
  restartsScheduled = true;
  crashes = 0;
  snapshotsInstalled = 0;
  /** Messages refused by a cut link, reported to their sender's core once its Ready loop is done. */
  private readonly unreachable: Message[] = [];
  /** Debugging aid (`--trace`): one line per event and per notable change. Off in normal runs. */
  trace: ((line: string) => void) | null = null;

  constructor(readonly scenario: Scenario) {
    this.rng = new SimRng(deriveSeed(scenario.seed, "simulator"));
    this.network = new Network(scenario.network, new SimRng(deriveSeed(scenario.seed, "network")));
    const founders: NodeId[] = [];
    for (let i = 1; i <= scenario.nodeCount; i += 1) founders.push(`n${i}`);
    for (const id of founders) this.addNode(id, founders);
  }

  addNode(id: NodeId, bootstrapVoters: readonly NodeId[] | null): NodeHarness {
    assert(!this.nodes.has(id) && this.nodes.size < nodesMax, `cannot add node ${id}`);
    const node = new NodeHarness(id, this.scenario, bootstrapVoters, this);
    this.nodes.set(id, node);
    node.start();
    this.queue.push(this.now + 1 + this.rng.int(this.scenario.tickPeriod), { kind: "tick", node: id });
    return node;
  }

  // ---------------------------------------------------------------- HarnessHooks

  send(message: Message): void {
    // Entries on the wire are part of the leader's log too: Log Matching holds for them as well.
    if (message.type === "app") {
      let prevTerm = message.logTerm;
      for (const entry of message.entries) {
        this.checker.recordEntry(message.from, entry.index, entry.term, entryCode(entry), prevTerm);
        prevTerm = entry.term;
      }
    }
    const arrivals = this.network.send(message, this.now);
    if (arrivals === null) {
      this.unreachable.push(message);
      return;
    }
    for (const time of arrivals) this.queue.push(time, { kind: "deliver", message });
  }

  applied(_node: NodeHarness, entry: Entry, code: number): void {
    this.ledger.resolve(entry.index, entry.term, code);
  }

  readState(node: NodeHarness, readState: ReadState): void {
    const request = this.ledger.reads.get(readState.requestCtx);
    if (request === undefined) violated("linearizability", `${node.id} got a ReadState for unknown request ${readState.requestCtx}`);
    this.checker.checkRead(node.id, readState.requestCtx, readState.index, request.committedAtIssue);
    this.ledger.readsServed += 1;
  }

  crashed(node: NodeHarness): void {
    this.crashes += 1;
    if (this.trace !== null) this.trace(`  ${node.id} crashed (incarnation ${node.incarnation})`);
    if (!this.restartsScheduled) return;
    const s = this.scenario;
    const at = this.now + this.rng.range(s.downtimeMin, s.downtimeMax);
    this.queue.push(at, { kind: "restart", node: node.id, incarnation: node.incarnation });
  }

  installedSnapshot(node: NodeHarness): void {
    this.snapshotsInstalled += 1;
    if (this.trace !== null) this.trace(`  ${node.id} installed snapshot ${node.storage.snapshotIndex}`);
  }

  // ---------------------------------------------------------------- steps

  /** Pop one event and handle it; returns false when nothing is left to do. */
  step(onAction: () => void): boolean {
    const next = this.queue.pop();
    if (next === undefined) return false;
    assert(next.time >= this.now, "simulated time never runs backwards");
    this.now = next.time;
    const event = next.event;
    if (this.trace !== null) this.trace(`t=${this.now} ${describeEvent(event)}`);
    switch (event.kind) {
      case "tick":
        this.handleTick(event.node);
        return true;
      case "deliver":
        this.handleDelivery(event.message);
        return true;
      case "restart":
        this.handleRestart(event.node, event.incarnation);
        return true;
      case "action":
        onAction();
        return true;
      default:
        return unreachable(event);
    }
  }

  private handleTick(id: NodeId): void {
    const node = this.node(id);
    const s = this.scenario;
    // Each tick's period drifts by up to ±1 time unit: clocks are never quite in step.
    this.queue.push(this.now + s.tickPeriod - 1 + this.rng.int(3), { kind: "tick", node: id });
    if (node.raw === null || node.pausedUntil > this.now) return;
    node.raw.tick();
    this.settle(node);
  }

  private handleDelivery(message: Message): void {
    const node = this.nodes.get(message.to);
    if (node === undefined || node.raw === null) return;
    if (node.pausedUntil > this.now) {
      // A stalled process's socket buffers: the message is read when the stall ends.
      this.queue.push(node.pausedUntil, { kind: "deliver", message });
      return;
    }
    if (!this.network.arrive(message)) return;
    node.raw.step(message);
    this.settle(node);
  }

  private handleRestart(id: NodeId, incarnation: number): void {
    const node = this.node(id);
    if (node.alive || node.incarnation !== incarnation) return;
    node.start();
    node.observe();
  }

  /** After any input to a node: run its Ready loop, then show its role to the checkers. */
  settle(node: NodeHarness): void {
    const before = `${node.role}@${node.term}`;
    node.drain();
    this.reportUnreachable(node);
    node.observe();
    if (this.trace !== null && node.alive && `${node.role}@${node.term}` !== before) {
      const storage = node.storage;
      this.trace(`  ${node.id} is now ${node.role}@${node.term} (commit ${storage.hardState.commit}, last ${storage.lastIndex()})`);
    }
  }

  /** The shell tells the core which peers it could not reach (etcd ReportUnreachable). */
  private reportUnreachable(node: NodeHarness): void {
    if (this.unreachable.length === 0) return;
    const peers = new Set<NodeId>();
    for (const message of this.unreachable) if (message.from === node.id) peers.add(message.to);
    this.unreachable.length = 0;
    if (node.raw === null) return;
    for (const peer of peers) node.raw.reportUnreachable(peer);
    node.drain();
  }

  node(id: NodeId): NodeHarness {
    const node = this.nodes.get(id);
    assert(node !== undefined, `unknown node ${id}`);
    return node;
  }

  aliveNodes(): NodeHarness[] {
    const out: NodeHarness[] = [];
    for (const node of this.nodes.values()) if (node.alive) out.push(node);
    return out;
  }

  /** The live leader with the highest term, if any (a stale leader may linger in a minority). */
  leader(): { node: NodeHarness; status: RaftStatus } | null {
    let best: { node: NodeHarness; status: RaftStatus } | null = null;
    for (const node of this.nodes.values()) {
      if (!node.isLeader || node.raw === null) continue;
      const status = node.raw.status();
      if (status.role !== "leader") continue;
      if (best === null || status.term > best.status.term) best = { node, status };
    }
    return best;
  }
}

function describeEvent(event: SimEvent): string {
  if (event.kind !== "deliver") return `${event.kind} ${"node" in event ? event.node : ""}`;
  const { type, from, to, term, ...rest } = event.message;
  const detail = JSON.stringify(rest, (key, value: unknown) =>
    key === "entries" && Array.isArray(value) ? value.map((e: { index: number; term: number }) => `${e.index}@${e.term}`) : key === "data" ? undefined : value,
  );
  return `deliver ${type} ${from}->${to} term=${term} ${detail}`;
}
