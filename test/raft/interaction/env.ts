/**
 * @module The world an interaction script drives: Raft cores (RawNode) with the thinnest possible
 * shell around each (a memory "disk" and an in-memory state machine), and a network of per-node
 * inboxes that only moves a message when the script says so. Nothing happens on its own: no
 * clock, no background delivery; a script's every step is explicit, which is what makes the
 * printed traces both deterministic and reviewable.
 *
 * The shell follows the contract in server/raft/types.ts for each Ready: persist snapshot,
 * entries (overwriting the suffix from entries[0].index) and hard state → send messages → apply
 * committed entries → advance(). A crash loses only what the core held in memory.
 */
import { assert } from "../../../server/assert.ts";
import { raftLimits } from "../../../server/constants.ts";
import { seededRng } from "../../../server/raft/prng.ts";
import { RawNode } from "../../../server/raft/raw-node.ts";
import type {
  Entry,
  HardState,
  Message,
  NodeId,
  PersistedState,
  RaftLimits,
  RaftOptions,
  Ready,
  Rng,
  Role,
  Snapshot,
} from "../../../server/raft/types.ts";
import { ScriptError } from "./datadriven.ts";
import { formatMessage, formatReady, sortIds } from "./format.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bounds every loop the scripts can trigger; exceeding one is a livelock worth failing on. */
export const stabilizeRoundsMax = 1000;
const inboxMessagesMax = 100_000;

/** The durable half of a node: what survives `crash`. */
export class MemoryStorage {
  hardState: HardState = { term: 0, votedFor: null, commit: 0 };
  snapshot: Snapshot | null = null;
  /** Contiguous entries after the snapshot (or from index 1). */
  entries: Entry[] = [];
  /** The state machine is durable too (opsconn applies into libSQL): applied data, in order. */
  stateMachine: string[] = [];
  applied = 0;

  firstIndex(): number {
    return (this.snapshot?.meta.index ?? 0) + 1;
  }

  lastIndex(): number {
    const last = this.entries[this.entries.length - 1];
    return last?.index ?? this.firstIndex() - 1;
  }

  termAt(index: number): number | null {
    if (this.snapshot !== null && index === this.snapshot.meta.index) return this.snapshot.meta.term;
    return this.entries.find((e) => e.index === index)?.term ?? null;
  }

  /** Ready.entries: delete every stored entry ≥ entries[0].index, then append. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index >= this.firstIndex(), `append at ${first.index} is behind the snapshot`);
    assert(first.index <= this.lastIndex() + 1, `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    this.entries = this.entries.filter((e) => e.index < first.index);
    for (const [i, entry] of entries.entries()) assert(entry.index === first.index + i, "Ready.entries must be contiguous");
    this.entries.push(...entries);
  }

  /**
   * A snapshot from the leader. Entries after it survive only if the log already holds the
   * snapshot's last entry (Raft §7, InstallSnapshot step 6); otherwise the whole log is superseded.
   */
  applySnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    const keep = this.termAt(index) === term;
    this.entries = keep ? this.entries.filter((e) => e.index > index) : [];
    this.snapshot = snapshot;
    this.stateMachine = decodeStateMachine(snapshot.data);
    this.applied = index;
  }

  persisted(): PersistedState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries], applied: this.applied };
  }
}

/** The state machine image in a snapshot: the applied data, as JSON. */
export function encodeStateMachine(applied: readonly string[]): Uint8Array {
  return encoder.encode(JSON.stringify(applied));
}

function decodeStateMachine(data: Uint8Array): string[] {
  const parsed: unknown = JSON.parse(decoder.decode(data));
  assert(Array.isArray(parsed) && parsed.every((x) => typeof x === "string"), "snapshot data is a string array");
  return parsed as string[];
}

/**
 * The Rng the core sees. By default it always answers 0, so every randomized election timeout is
 * exactly electionTicks: scripts then say "tick-election" and know what happens. A `seed` swaps in
 * the real seeded PRNG, mixed with the node id so that nodes do not all draw the same timeouts.
 */
function makeRng(seed: number | null, id: NodeId): Rng {
  if (seed !== null) return seededRng((seed ^ fnv1a(id)) >>> 0);
  return {
    nextInt(maxExclusive: number): number {
      assert(maxExclusive > 0, "nextInt bound must be positive");
      return 0;
    },
  };
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

export interface NodeConfig {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly limits: RaftLimits;
  readonly seed: number | null;
}

export const defaultLimits: RaftLimits = { ...raftLimits };

/** One node: its core (null while crashed), disk, and what we last saw of its role. */
export class NodeSlot {
  rawNode: RawNode | null;
  readonly storage = new MemoryStorage();
  /** Role and term last printed, so changes can be reported as they happen. */
  observed: { role: Role; term: number } | null = null;

  constructor(
    readonly id: NodeId,
    readonly config: NodeConfig,
    bootstrapVoters: readonly NodeId[] | null,
  ) {
    this.rawNode = new RawNode(this.options(bootstrapVoters, null));
  }

  options(bootstrapVoters: readonly NodeId[] | null, persisted: PersistedState | null): RaftOptions {
    const c = this.config;
    const base = {
      id: this.id,
      electionTicks: c.electionTicks,
      heartbeatTicks: c.heartbeatTicks,
      preVote: c.preVote,
      checkQuorum: c.checkQuorum,
      limits: c.limits,
      rng: makeRng(c.seed, this.id),
    };
    if (persisted !== null) return { ...base, persisted };
    if (bootstrapVoters !== null) return { ...base, bootstrapVoters };
    return base;
  }

  node(): RawNode {
    if (this.rawNode === null) throw new ScriptError(`node ${this.id} is down (restart it first)`);
    return this.rawNode;
  }
}

/** Why a message did not reach its destination. */
type DropReason = "partitioned" | "node down" | "no such node";

export class InteractionEnv {
  readonly nodes = new Map<NodeId, NodeSlot>();
  /** Messages in flight, per destination, in send order. */
  readonly inboxes = new Map<NodeId, Message[]>();
  /** Nodes cut off from everyone (`isolate`). */
  readonly isolated = new Set<NodeId>();
  /** `partition (1,2) (3,4,5)`: group number per listed node; unlisted nodes reach everyone. */
  readonly groups = new Map<NodeId, number>();
  /** Output lines of the command being run. */
  private lines: string[] = [];
  /** `log-level none` silences traffic (Ready, deliveries, role changes); queries still print. */
  verbose = true;

  // ---- output -------------------------------------------------------------------------------

  /** Traffic output: subject to `log-level`. */
  log(line: string): void {
    if (this.verbose) this.lines.push(line);
  }

  /** Query output: always printed. */
  print(line: string): void {
    this.lines.push(line);
  }

  takeOutput(): string {
    const out = this.lines.join("\n");
    this.lines = [];
    return out;
  }

  // ---- membership of the env ----------------------------------------------------------------

  slot(id: NodeId): NodeSlot {
    const slot = this.nodes.get(id);
    if (slot === undefined) throw new ScriptError(`no node ${id}`);
    return slot;
  }

  ids(): NodeId[] {
    return sortIds(this.nodes.keys());
  }

  addNode(id: NodeId, config: NodeConfig, bootstrapVoters: readonly NodeId[] | null): void {
    if (this.nodes.has(id)) throw new ScriptError(`node ${id} exists`);
    const slot = new NodeSlot(id, config, bootstrapVoters);
    this.nodes.set(id, slot);
    slot.observed = roleOf(slot);
  }

  // ---- the shell ----------------------------------------------------------------------------

  /** Reports role/term changes since the last look, the way etcd logs "became leader". */
  observe(slot: NodeSlot, indent: string): void {
    const now = roleOf(slot);
    const before = slot.observed;
    slot.observed = now;
    if (now === null || before === null) return;
    if (now.role !== before.role || now.term !== before.term) this.log(`${indent}${slot.id} became ${now.role} at term ${now.term}`);
  }

  /** One Ready through the shell: persist → send → apply → advance. Returns false if none. */
  processReady(id: NodeId, indent: string): boolean {
    const slot = this.slot(id);
    const node = slot.node();
    if (!node.hasReady()) return false;
    const ready = node.ready();
    this.log(`${indent}> ${id} handling Ready`);
    const annotate = (m: Message): string => {
      const to = this.nodes.get(m.to);
      if (to === undefined) return " (dropped: no such node)";
      return to.rawNode === null ? " (dropped: node down)" : "";
    };
    for (const line of formatReady(ready, annotate)) this.log(`${indent}  ${line}`);
    this.persist(slot, ready);
    this.send(ready.messages);
    this.apply(slot, ready);
    node.advance();
    this.observe(slot, `${indent}  `);
    return true;
  }

  private persist(slot: NodeSlot, ready: Ready): void {
    if (ready.snapshot !== null) slot.storage.applySnapshot(ready.snapshot);
    slot.storage.append(ready.entries);
    if (ready.hardState !== null) slot.storage.hardState = ready.hardState;
  }

  private send(messages: readonly Message[]): void {
    for (const m of messages) {
      assert(m.from !== m.to, `the core addressed a message to itself: ${formatMessage(m)}`);
      // A down node's connection refuses: the message is gone, not queued for after its restart.
      const dest = this.nodes.get(m.to);
      if (dest === undefined || dest.rawNode === null) continue;
      const inbox = this.inboxes.get(m.to) ?? [];
      assert(inbox.length < inboxMessagesMax, "inbox bound exceeded");
      inbox.push(m);
      this.inboxes.set(m.to, inbox);
    }
  }

  private apply(slot: NodeSlot, ready: Ready): void {
    const storage = slot.storage;
    for (const entry of ready.committedEntries) {
      assert(entry.index === storage.applied + 1, `node ${slot.id} applies ${entry.index} after ${storage.applied}`);
      if (entry.type === "normal" && entry.data.length > 0) storage.stateMachine.push(decoder.decode(entry.data));
      storage.applied = entry.index;
    }
  }

  /** Delivers (or drops) every message queued for `id`; returns false if there were none. */
  deliver(id: NodeId, indent: string, dropAll: boolean): boolean {
    const inbox = this.inboxes.get(id) ?? [];
    if (inbox.length === 0) return false;
    this.inboxes.set(id, []);
    this.log(`${indent}> ${id} receiving messages`);
    for (const m of inbox) {
      const reason = dropAll ? null : this.dropReason(m);
      if (dropAll || reason !== null) {
        this.log(`${indent}  ${formatMessage(m)} (dropped${reason === null ? "" : `: ${reason}`})`);
        continue;
      }
      this.log(`${indent}  ${formatMessage(m)}`);
      const slot = this.slot(id);
      slot.node().step(m);
      this.observe(slot, `${indent}  `);
    }
    return true;
  }

  private dropReason(m: Message): DropReason | null {
    const slot = this.nodes.get(m.to);
    if (slot === undefined) return "no such node";
    if (slot.rawNode === null) return "node down";
    if (this.isolated.has(m.from) || this.isolated.has(m.to)) return "partitioned";
    const a = this.groups.get(m.from);
    const b = this.groups.get(m.to);
    if (a !== undefined && b !== undefined && a !== b) return "partitioned";
    return null;
  }

  /** Ready/deliver rounds over `ids` until nothing moves (etcd `stabilize`). */
  stabilize(ids: readonly NodeId[]): void {
    for (let round = 0; round < stabilizeRoundsMax; round += 1) {
      let moved = false;
      for (const id of ids) {
        if (this.slot(id).rawNode !== null && this.processReady(id, "")) moved = true;
      }
      for (const id of ids) {
        if (this.deliver(id, "", false)) moved = true;
      }
      if (!moved) return;
    }
    throw new ScriptError(`stabilize did not settle within ${stabilizeRoundsMax} rounds`);
  }

  // ---- failures -----------------------------------------------------------------------------

  /** The process dies: the core and anything it had not handed out in a Ready are gone. */
  crash(id: NodeId): void {
    const slot = this.slot(id);
    slot.node();
    slot.rawNode = null;
    slot.observed = null;
    const lost = this.inboxes.get(id)?.length ?? 0;
    this.inboxes.set(id, []);
    this.log(`${id} crashed${lost > 0 ? ` (${lost} in-flight message(s) to it lost)` : ""}`);
  }

  restart(id: NodeId): void {
    const slot = this.slot(id);
    if (slot.rawNode !== null) throw new ScriptError(`node ${id} is running (crash it first)`);
    slot.rawNode = new RawNode(slot.options(null, slot.storage.persisted()));
    slot.observed = roleOf(slot);
    const s = slot.node().status();
    this.log(`${id} restarted: ${s.role} term=${s.term} vote=${s.votedFor ?? "none"} commit=${s.commit} applied=${s.applied} last=${s.lastIndex}`);
  }
}

function roleOf(slot: NodeSlot): { role: Role; term: number } | null {
  if (slot.rawNode === null) return null;
  const s = slot.rawNode.status();
  return { role: s.role, term: s.term };
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
