/**
 * @module The script vocabulary (after etcd-io/raft's interaction env handlers). Each command
 * reads its arguments, drives the env and prints what happened. Traffic output (Ready batches,
 * deliveries, role changes) honours `log-level`; queries and request results always print.
 *
 *   add-nodes N [voters=(1,2,3)] [election=10 heartbeat=1 prevote=false checkquorum=false]
 *             [append-bytes=N inflight=N seed=N]   founders get voters= as bootstrap voters;
 *                                                  without voters= the nodes are blank joiners
 *                                                  (learners join through propose-conf-change)
 *   campaign ID                 tick ID until its election timer fires (it campaigns)
 *   tick ID... [n=1]            tick-election ID...   tick-heartbeat ID...
 *   propose ID data             propose-conf-change ID add-voter|add-learner|remove-node NODE
 *   read-index ID ctx           transfer-leadership FROM TO       report-unreachable ID PEER
 *   compact ID [INDEX]          snapshot at the applied index (the core's contract)
 *   process-ready ID...         deliver-msgs [ID...] [drop=(ID,...)]     stabilize [ID...]
 *   isolate ID                  partition (1,2) (3,4,5)           heal
 *   crash ID                    restart ID
 *   raft-state                  raft-log ID        status ID       state-machine ID
 *   log-level none|info
 */
import { assert } from "../../../server/assert.ts";
import type { ConfChangeType, NodeId, ProposeResult, RequestResult } from "../../../server/raft/types.ts";
import { type Args, type Directive, parseList, ScriptError } from "./datadriven.ts";
import { defaultLimits, encodeStateMachine, type InteractionEnv, type NodeSlot, utf8 } from "./env.ts";
import { formatConfState, formatEntry, formatSnapshot, formatSnapshotMeta, sortIds } from "./format.ts";

type Command = (env: InteractionEnv, args: Args) => void;

const ticksMax = 10_000;
const proposalsRepeatMax = 10_000;
const stateMachineShownMax = 8;

/** Runs one directive against the env and returns its output. */
export function runCommand(env: InteractionEnv, d: Directive): string {
  const command = commands[d.command];
  if (command === undefined) throw new ScriptError(`unknown command ${d.command}`);
  if (d.input.length > 0) throw new ScriptError(`${d.command} takes no input lines`);
  command(env, d.args);
  return env.takeOutput();
}

function ids(env: InteractionEnv, args: Args): NodeId[] {
  const given = args.rest();
  for (const id of given) env.slot(id);
  return given.length > 0 ? given : env.ids();
}

function firstSlot(env: InteractionEnv, list: readonly NodeId[]): NodeSlot {
  const first = list[0];
  if (first === undefined) throw new ScriptError("no nodes to tick");
  return env.slot(first);
}

function printResult(env: InteractionEnv, result: ProposeResult | RequestResult): void {
  if (result.ok) {
    env.print("index" in result ? `ok index=${result.index} term=${result.term}` : "ok");
    return;
  }
  if (result.reason === "not-leader") env.print(`not-leader (leader=${result.leader ?? "none"})`);
  else env.print(`dropped: ${result.detail}`);
}

function tickN(env: InteractionEnv, idList: readonly NodeId[], count: number): void {
  assert(count >= 0 && count <= ticksMax, "tick count within bounds");
  // Round-robin, so nodes ticked together age together (a tick emits no message by itself).
  for (let i = 0; i < count; i += 1) {
    for (const id of idList) {
      const slot = env.slot(id);
      slot.node().tick();
      env.observe(slot, "");
    }
  }
}

const confChangeTypes: readonly ConfChangeType[] = ["add-voter", "add-learner", "remove-node"];

const commands: Record<string, Command> = {
  "log-level": (env, args) => {
    const level = args.next("level");
    args.done();
    if (level !== "none" && level !== "info") throw new ScriptError("log-level is none or info");
    env.verbose = level === "info";
  },

  "add-nodes": (env, args) => {
    const count = args.nextInt("count");
    const voters = args.list("voters");
    const config = {
      electionTicks: args.int("election", 10),
      heartbeatTicks: args.int("heartbeat", 1),
      preVote: args.bool("prevote", false),
      checkQuorum: args.bool("checkquorum", false),
      limits: {
        ...defaultLimits,
        appendBytesMax: args.int("append-bytes", defaultLimits.appendBytesMax),
        inflightMessagesMax: args.int("inflight", defaultLimits.inflightMessagesMax),
      },
      seed: args.has("seed") ? args.int("seed", 0) : null,
    };
    args.done();
    const first = env.nodes.size + 1;
    const added = Array.from({ length: count }, (_, i) => String(first + i));
    for (const id of voters ?? []) {
      if (!added.includes(id)) throw new ScriptError(`bootstrap voter ${id} is not among the nodes added (${added.join(",")})`);
    }
    for (const id of added) env.addNode(id, config, voters);
  },

  campaign: (env, args) => {
    const id = args.next("id");
    args.done();
    const slot = env.slot(id);
    const limit = 2 * slot.config.electionTicks;
    const node = slot.node();
    const before = { ...node.status(), ready: node.hasReady() };
    for (let i = 0; i < limit; i += 1) {
      node.tick();
      env.observe(slot, "");
      const after = node.status();
      // A sole voter wins on the spot, so "became leader" counts as having campaigned too.
      const campaigning = after.role === "pre-candidate" || after.role === "candidate" || after.role === "leader";
      // A node already campaigning starts over without a role change: its new vote requests
      // (a Ready appearing) are the only sign, hence the hasReady edge.
      const started = after.role !== before.role || after.term !== before.term || (!before.ready && node.hasReady());
      if (campaigning && started) return;
    }
    throw new ScriptError(`node ${id} did not campaign within ${limit} ticks (leader, not a voter, or conf changes unapplied?)`);
  },

  tick: (env, args) => {
    const n = args.int("n", 1);
    tickN(env, ids(env, args), n);
    args.done();
  },

  // Ticks as many times as the first node's configured timeout (scripts tick alike-configured nodes).
  "tick-election": (env, args) => {
    const list = ids(env, args);
    args.done();
    tickN(env, list, firstSlot(env, list).config.electionTicks);
  },

  "tick-heartbeat": (env, args) => {
    const list = ids(env, args);
    args.done();
    tickN(env, list, firstSlot(env, list).config.heartbeatTicks);
  },

  propose: (env, args) => {
    const id = args.next("id");
    const data = args.next("data");
    // repeat=N proposes N entries in a row (e.g. to push a follower behind the compaction point);
    // only the last result prints.
    const repeat = args.int("repeat", 1);
    args.done();
    if (repeat < 1 || repeat > proposalsRepeatMax) throw new ScriptError(`repeat must be in [1, ${proposalsRepeatMax}]`);
    const slot = env.slot(id);
    let result = slot.node().propose(utf8(data));
    for (let i = 1; i < repeat && result.ok; i += 1) result = slot.node().propose(utf8(data));
    printResult(env, result);
    env.observe(slot, "");
  },

  "propose-conf-change": (env, args) => {
    const id = args.next("id");
    const type = args.next("type") as ConfChangeType;
    const nodeId = args.next("node");
    args.done();
    if (!confChangeTypes.includes(type)) throw new ScriptError(`conf change type is one of ${confChangeTypes.join(", ")}`);
    const slot = env.slot(id);
    printResult(env, slot.node().proposeConfChange({ type, nodeId }));
    env.observe(slot, "");
  },

  "read-index": (env, args) => {
    const id = args.next("id");
    const ctx = args.next("ctx");
    args.done();
    const slot = env.slot(id);
    printResult(env, slot.node().readIndex(ctx));
    env.observe(slot, "");
  },

  "transfer-leadership": (env, args) => {
    const from = args.next("from");
    const to = args.next("to");
    args.done();
    const slot = env.slot(from);
    printResult(env, slot.node().transferLeadership(to));
    env.observe(slot, "");
  },

  "report-unreachable": (env, args) => {
    const id = args.next("id");
    const peer = args.next("peer");
    args.done();
    env.slot(id).node().reportUnreachable(peer);
  },

  compact: (env, args) => {
    const id = args.next("id");
    const index = args.nextIntOptional("index");
    args.done();
    compact(env, id, index);
  },

  "process-ready": (env, args) => {
    for (const id of ids(env, args)) {
      if (!env.processReady(id, "")) env.log(`> ${id} has no Ready`);
    }
    args.done();
  },

  "deliver-msgs": (env, args) => {
    const drop = args.list("drop") ?? [];
    const given = args.rest();
    args.done();
    for (const id of [...given, ...drop]) env.slot(id);
    // With only drop= given, nothing else moves: "lose these" must not also mean "deliver the rest".
    const targets = given.length > 0 ? given : drop.length > 0 ? [] : env.ids();
    for (const id of drop) env.deliver(id, "", true);
    for (const id of targets) env.deliver(id, "", false);
  },

  stabilize: (env, args) => {
    const list = ids(env, args);
    args.done();
    env.stabilize(list);
  },

  isolate: (env, args) => {
    const id = args.next("id");
    args.done();
    env.slot(id);
    env.isolated.add(id);
  },

  partition: (env, args) => {
    const groups = args.rest();
    args.done();
    if (groups.length < 2) throw new ScriptError("partition needs at least two groups");
    env.groups.clear();
    for (const [n, group] of groups.entries()) {
      for (const id of parseList(group)) {
        env.slot(id);
        if (env.groups.has(id)) throw new ScriptError(`node ${id} in two groups`);
        env.groups.set(id, n);
      }
    }
  },

  heal: (env, args) => {
    args.done();
    env.isolated.clear();
    env.groups.clear();
  },

  crash: (env, args) => {
    const id = args.next("id");
    args.done();
    env.crash(id);
  },

  restart: (env, args) => {
    const id = args.next("id");
    args.done();
    env.restart(id);
  },

  "raft-state": (env, args) => {
    args.done();
    for (const id of env.ids()) env.print(raftStateLine(env, id));
  },

  "raft-log": (env, args) => {
    const id = args.next("id");
    args.done();
    const storage = env.slot(id).storage;
    if (storage.snapshot !== null) env.print(`snapshot ${formatSnapshot(storage.snapshot)}`);
    for (const entry of storage.entries) env.print(formatEntry(entry));
    if (storage.snapshot === null && storage.entries.length === 0) env.print("log is empty");
  },

  status: (env, args) => {
    const id = args.next("id");
    args.done();
    const s = env.slot(id).node().status();
    env.print(`${s.id}: ${s.role} term=${s.term} vote=${s.votedFor ?? "none"} leader=${s.leader ?? "none"} commit=${s.commit} applied=${s.applied} last=${s.lastIndex}`);
    env.print(`  ${formatConfState(s.confState)}`);
    for (const peer of sortIds(s.progress.keys())) {
      const p = s.progress.get(peer);
      assert(p !== undefined, "progress of a listed peer");
      const flags = [p.recentActive ? "active" : "inactive", ...(p.isLearner ? ["learner"] : [])];
      env.print(`  ${peer}: ${p.state} match=${p.match} next=${p.next} ${flags.join(" ")}`);
    }
  },

  "state-machine": (env, args) => {
    const id = args.next("id");
    args.done();
    const storage = env.slot(id).storage;
    const data = storage.stateMachine;
    // Long histories (bulk proposals) are summarized: the count and the tail.
    const shown = data.length <= stateMachineShownMax ? JSON.stringify(data) : `${data.length} items, last ${JSON.stringify(data.slice(-3))}`;
    env.print(`applied=${storage.applied} data=${shown}`);
  },
};

function raftStateLine(env: InteractionEnv, id: NodeId): string {
  const slot = env.slot(id);
  if (slot.rawNode === null) return `${id}: down`;
  const s = slot.rawNode.status();
  const membership = s.confState.voters.includes(id) ? "voter" : s.confState.learners.includes(id) ? "learner" : "non-member";
  return `${id}: ${s.role} (${membership}) term=${s.term} leader=${s.leader ?? "none"} commit=${s.commit} applied=${s.applied} last=${s.lastIndex}`;
}

/** The shell's side of log compaction: snapshot the state machine at `applied`, then trim. */
function compact(env: InteractionEnv, id: NodeId, indexArg: number | null): void {
  const slot = env.slot(id);
  const storage = slot.storage;
  const index = indexArg ?? storage.applied;
  if (index !== storage.applied) throw new ScriptError(`compact index must be the applied index ${storage.applied}`);
  const term = storage.termAt(index);
  assert(term !== null, `entry ${index} is on disk`);
  const data = encodeStateMachine(storage.stateMachine);
  const node = slot.node();
  node.compact({ index, data });
  // Conf changes take effect when applied, so the configuration now in force is the one at `index`.
  const confState = node.status().confState;
  storage.snapshot = { meta: { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } }, data };
  storage.entries = storage.entries.filter((e) => e.index > index);
  env.log(`${id} compacted: snapshot ${formatSnapshotMeta(storage.snapshot.meta)}`);
}
