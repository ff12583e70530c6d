/**
 * @module Paper tests for the thesis extensions the core implements: membership changes (§4 / §6
 * of the paper), PreVote (§9.6), CheckQuorum and the leader lease, ReadIndex (§6.4), leadership
 * transfer (§3.10), snapshots (§7), flow control, limits, bootstrap and restart.
 */
import { describe, expect, test } from "bun:test";
import { raftLimits } from "../../server/constants.ts";
import { decodeConfChange, encodeConfChange } from "../../server/raft/conf-change.ts";
import { RawNode } from "../../server/raft/raw-node.ts";
import type { Entry, NodeId } from "../../server/raft/types.ts";
import { Network, nodeOptions } from "./network.ts";
import { app, appResp, drain, drainMessages, encoder, entriesOfTerms, heartbeat, ofType, restoredNode, tickUntil, vote, voteResp } from "./helpers.ts";

function leaderOf3(overrides = {}): Network {
  const net = Network.bootstrap(["a", "b", "c"], overrides);
  net.campaign("a");
  expect(net.leader()).toBe("a");
  return net;
}

/** A brand-new, empty node (not bootstrapped) that learns everything from the leader. */
function joiner(net: Network, id: NodeId): RawNode {
  const node = new RawNode(nodeOptions(id));
  net.add(id, node);
  return node;
}

function changeConf(net: Network, type: "add-voter" | "add-learner" | "remove-node", nodeId: NodeId, at: NodeId = "a"): void {
  const result = net.node(at).proposeConfChange({ type, nodeId });
  expect(result.ok).toBe(true);
  net.stabilize();
}

describe("§6 membership changes", () => {
  test("§6 an added voter catches up, and the quorum grows with it", () => {
    const net = leaderOf3();
    net.propose("a", "before");
    joiner(net, "d");
    changeConf(net, "add-voter", "d");
    expect(net.node("a").status().confState.voters).toEqual(["a", "b", "c", "d"]);
    expect(net.node("d").status().confState.voters).toEqual(["a", "b", "c", "d"]);
    expect(net.appliedTexts("d")).toEqual(["before"]);
    // 4 voters: a quorum is 3, so a and b alone can no longer commit.
    net.isolate("c");
    net.isolate("d");
    const commit = net.node("a").status().commit;
    net.propose("a", "after");
    expect(net.node("a").status().commit).toBe(commit);
  });

  test("§6 a learner receives the log but neither votes nor counts toward commitment", () => {
    const net = leaderOf3();
    joiner(net, "d");
    changeConf(net, "add-learner", "d");
    net.propose("a", "x");
    expect(net.appliedTexts("d")).toEqual(["x"]);
    net.isolate("b");
    net.isolate("c");
    const commit = net.node("a").status().commit;
    net.propose("a", "y"); // a + learner d is not a majority of {a, b, c}
    expect(net.node("a").status().commit).toBe(commit);
    // The learner never campaigns, however long it hears nothing.
    for (let i = 0; i < 100; i++) net.node("d").tick();
    expect(net.node("d").status().role).toBe("follower");
  });

  test("§6 add-voter on a learner promotes it", () => {
    const net = leaderOf3();
    joiner(net, "d");
    changeConf(net, "add-learner", "d");
    changeConf(net, "add-voter", "d");
    expect(net.node("a").status().confState).toEqual({ voters: ["a", "b", "c", "d"], learners: [] });
    expect(net.node("a").status().progress.get("d")?.isLearner).toBe(false);
  });

  test("§6 a removed follower stops receiving entries and the quorum shrinks", () => {
    const net = leaderOf3();
    changeConf(net, "remove-node", "c");
    expect(net.node("a").status().confState.voters).toEqual(["a", "b"]);
    expect(net.node("a").status().progress.has("c")).toBe(false);
    net.log.length = 0;
    net.propose("a", "x");
    expect(net.log.some((m) => m.to === "c")).toBe(false);
    expect(net.appliedTexts("b")).toEqual(["x"]);
  });

  test("§6 one change at a time: a second proposal before the first applies is dropped", () => {
    const net = leaderOf3();
    const a = net.node("a");
    expect(a.proposeConfChange({ type: "add-learner", nodeId: "d" }).ok).toBe(true);
    expect(a.proposeConfChange({ type: "add-learner", nodeId: "e" })).toMatchObject({ ok: false, reason: "dropped" });
    net.stabilize();
    expect(a.proposeConfChange({ type: "add-learner", nodeId: "e" }).ok).toBe(true);
  });

  test("§6 a new leader accepts conf changes only once its no-op is committed", () => {
    const net = Network.bootstrap(["a", "b", "c"]);
    const a = net.node("a");
    tickUntil(a, () => a.status().role === "candidate");
    drain(a);
    a.step(voteResp("b", "a", a.status().term, false));
    expect(a.status().role).toBe("leader");
    expect(a.proposeConfChange({ type: "remove-node", nodeId: "c" })).toMatchObject({ ok: false, reason: "dropped" });
    net.stabilize();
    expect(a.proposeConfChange({ type: "remove-node", nodeId: "c" }).ok).toBe(true);
  });

  test("§6 a removed leader steps down once the removal is applied, and the rest elect a leader", () => {
    const net = leaderOf3();
    changeConf(net, "remove-node", "a");
    expect(net.node("a").status().role).toBe("follower");
    expect(net.node("b").status().confState.voters).toEqual(["b", "c"]);
    net.isolate("a");
    net.tickAll(40);
    expect(["b", "c"]).toContain(net.leader() ?? "none");
    // The removed node is not in the configuration, so it never campaigns.
    expect(net.node("a").status().role).toBe("follower");
  });

  test("§6 a leader that proposed its own removal takes no more proposals (2 → 1 voters stays live)", () => {
    const net = Network.bootstrap(["a", "b"]);
    net.campaign("a");
    const a = net.node("a");
    expect(a.proposeConfChange({ type: "remove-node", nodeId: "a" }).ok).toBe(true);
    // Were a to take more entries that b lacks, b (still seeing voters a, b if it missed the
    // commit) could never win a's vote: a's log would stay more up-to-date than b's.
    expect(a.propose(encoder.encode("x"))).toMatchObject({ ok: false, reason: "dropped" });
    // b gets the removal entry but not the commit index that follows it.
    net.filter = (m) => m.to !== "b" || (m.type === "app" && m.entries.length > 0);
    net.stabilize();
    expect(a.status().role).toBe("follower");
    expect(net.node("b").status().confState.voters).toEqual(["a", "b"]);
    net.heal();
    net.tickAll(40);
    expect(net.leader()).toBe("b");
    expect(net.node("b").status().confState.voters).toEqual(["b"]);
  });

  test("§6 conf changes proposed by a follower get not-leader; invalid ones are dropped", () => {
    const net = leaderOf3();
    expect(net.node("b").proposeConfChange({ type: "add-voter", nodeId: "d" })).toEqual({ ok: false, reason: "not-leader", leader: "a" });
    expect(net.node("a").proposeConfChange({ type: "add-voter", nodeId: "b" })).toMatchObject({ reason: "dropped" });
    expect(net.node("a").proposeConfChange({ type: "remove-node", nodeId: "zz" })).toMatchObject({ reason: "dropped" });
  });
});

describe("§6 a leader that removes itself (found by test/sim)", () => {
  /** A 2-voter node whose log ends in an unapplied conf change removing itself. */
  function restartedWithPendingSelfRemoval(): RawNode {
    const removal: Entry = { term: 1, index: 3, type: "conf-change", data: encodeConfChange({ type: "remove-node", nodeId: "a" }) };
    return new RawNode(
      nodeOptions("a", {
        persisted: {
          hardState: { term: 1, votedFor: "a", commit: 2 },
          snapshot: { meta: { index: 0, term: 0, confState: { voters: ["a", "b"], learners: [] } }, data: new Uint8Array(0) },
          entries: [...entriesOfTerms([1, 1]), removal],
          applied: 2,
        },
      }),
    );
  }

  function electWithVoteOf(node: RawNode, voter: NodeId): void {
    tickUntil(node, () => node.status().role !== "follower");
    for (let round = 0; round < 3 && node.status().role !== "leader"; round++) {
      for (const m of drainMessages(node)) {
        if (m.type === "vote" || m.type === "pre-vote") node.step(voteResp(voter, "a", m.term, false, m.type === "vote" ? "vote-resp" : "pre-vote-resp"));
      }
    }
    expect(node.status().role).toBe("leader");
  }

  test("§6 re-elected with its own removal still in the log, it accepts no proposals", () => {
    const node = restartedWithPendingSelfRemoval();
    electWithVoteOf(node, "b");
    const result = node.propose(encoder.encode("x"));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toBe("dropped");
  });

  test("§3.10 once it applies its removal it hands over to a voter holding its whole log", () => {
    const node = restartedWithPendingSelfRemoval();
    electWithVoteOf(node, "b");
    drain(node);
    const last = node.status().lastIndex;
    node.step(appResp("b", "a", node.status().term, last));
    const messages = [...drainMessages(node), ...drainMessages(node)]; // commit + apply, then hand-over
    expect(ofType(messages, "timeout-now").map((m) => m.to)).toEqual(["b"]);
    expect(node.status().role).toBe("follower");
    expect(node.status().confState.voters).toEqual(["b"]);
  });
});

describe("§9.6 PreVote", () => {
  test("§9.6 a partitioned node does not bump its term, so rejoining does not disrupt the leader", () => {
    const net = leaderOf3({ preVote: true });
    const term = net.node("a").status().term;
    net.isolate("c");
    for (let i = 0; i < 100; i++) net.node("c").tick();
    net.stabilize();
    expect(net.node("c").status().term).toBe(term);
    expect(net.node("c").status().role).toBe("pre-candidate");
    net.heal();
    net.tickAll(3);
    expect(net.leader()).toBe("a");
    expect(net.node("a").status().term).toBe(term);
    expect(net.node("c").status()).toMatchObject({ role: "follower", leader: "a" });
  });

  test("§9.6 without PreVote the same partition disrupts the group (contrast)", () => {
    const net = leaderOf3();
    const term = net.node("a").status().term;
    net.isolate("c");
    for (let i = 0; i < 100; i++) net.node("c").tick();
    net.heal();
    net.tickAll(1);
    expect(net.node("a").status().term).toBeGreaterThan(term);
  });

  test("§9.6 a pre-vote is granted for the future term without changing the voter's term or vote", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    node.step(vote("b", "a", 2, 1, 1, "pre-vote"));
    const resp = ofType(drainMessages(node), "pre-vote-resp")[0];
    expect(resp).toMatchObject({ term: 2, reject: false });
    expect(node.status()).toMatchObject({ term: 1, votedFor: null });
  });

  test("§9.6 a pre-candidate that wins the pre-vote campaigns for real in term + 1", () => {
    const node = restoredNode("a", { terms: [1], term: 1, overrides: { preVote: true } });
    tickUntil(node, () => node.status().role === "pre-candidate");
    const preVotes = ofType(drainMessages(node), "pre-vote");
    expect(preVotes.map((m) => m.term)).toEqual([2, 2]);
    expect(node.status().term).toBe(1);
    node.step(voteResp("b", "a", 2, false, "pre-vote-resp"));
    expect(node.status()).toMatchObject({ role: "candidate", term: 2 });
  });
});

describe("CheckQuorum (thesis §6.2) and the leader lease (§4.2.3)", () => {
  test("checkQuorum: a leader that hears from no majority for an election timeout steps down", () => {
    const net = leaderOf3({ checkQuorum: true });
    net.isolate("b");
    net.isolate("c");
    const a = net.node("a");
    for (let i = 0; i < 20 && a.status().role === "leader"; i++) {
      a.tick();
      net.stabilize();
    }
    expect(a.status().role).toBe("follower");
  });

  test("checkQuorum: a leader in touch with a majority stays leader", () => {
    const net = leaderOf3({ checkQuorum: true });
    net.isolate("c");
    net.tickAll(50);
    expect(net.node("a").status().role).toBe("leader");
  });

  test("checkQuorum: a follower that recently heard from its leader ignores a vote request", () => {
    const net = leaderOf3({ checkQuorum: true });
    const b = net.node("b");
    const term = b.status().term;
    b.step(vote("c", "b", term + 1, 100, term + 1));
    expect(b.status().term).toBe(term);
    expect(drainMessages(b)).toEqual([]);
    // ...unless the vote follows a leadership transfer.
    b.step(vote("c", "b", term + 1, 100, term + 1, "vote", true));
    expect(b.status()).toMatchObject({ term: term + 1, votedFor: "c" });
  });

  test("checkQuorum: a stale leader learns the new term from the answer to its heartbeat", () => {
    const node = restoredNode("b", { terms: [1], term: 5, overrides: { checkQuorum: true } });
    node.step(heartbeat("a", "b", 3));
    expect(drainMessages(node)).toEqual([appResp("b", "a", 5, 0)]);
  });
});

describe("§6.4 ReadIndex", () => {
  test("§6.4 a leader serves a read at its commit index once a quorum confirms its leadership", () => {
    const net = leaderOf3();
    net.propose("a", "x");
    const a = net.node("a");
    expect(a.readIndex("r1")).toEqual({ ok: true });
    const rd = a.ready();
    a.advance();
    const hb = ofType(rd.messages, "heartbeat");
    expect(hb.map((m) => m.context)).toEqual(["r1", "r1"]);
    expect(rd.readStates).toEqual([]);
    for (const m of rd.messages) net.node(m.to).step(m);
    net.stabilize();
    expect(net.readStates.get("a")).toEqual([{ index: a.status().commit, requestCtx: "r1" }]);
  });

  test("§6.4 no read is served while the leader is cut off from its quorum", () => {
    const net = leaderOf3();
    net.isolate("b");
    net.isolate("c");
    net.node("a").readIndex("r1");
    net.stabilize();
    expect(net.readStates.get("a")).toEqual([]);
  });

  test("§6.4 a new leader waits until it has committed an entry of its term", () => {
    const net = Network.bootstrap(["a", "b", "c"]);
    const a = net.node("a");
    tickUntil(a, () => a.status().role === "candidate");
    drain(a);
    a.step(voteResp("b", "a", a.status().term, false));
    expect(a.readIndex("early")).toEqual({ ok: true });
    net.stabilize();
    expect(net.readStates.get("a")).toEqual([{ index: 4, requestCtx: "early" }]);
  });

  test("§6.4 a single voter serves reads at once; followers answer not-leader", () => {
    const net = Network.bootstrap(["a"]);
    net.campaign("a");
    net.node("a").readIndex("solo");
    net.stabilize();
    expect(net.readStates.get("a")).toEqual([{ index: 2, requestCtx: "solo" }]);
    const three = leaderOf3();
    expect(three.node("b").readIndex("r")).toEqual({ ok: false, reason: "not-leader", leader: "a" });
  });

  test("§6.4 pending reads are bounded by readIndexPendingMax", () => {
    const net = leaderOf3({ limits: { ...raftLimits, readIndexPendingMax: 2 } });
    net.isolate("b");
    net.isolate("c");
    const a = net.node("a");
    expect(a.readIndex("1").ok).toBe(true);
    expect(a.readIndex("2").ok).toBe(true);
    expect(a.readIndex("3")).toMatchObject({ ok: false, reason: "dropped" });
  });
});

describe("§3.10 leadership transfer", () => {
  test("§3.10 transfer to an up-to-date follower makes it leader with a higher term", () => {
    const net = leaderOf3({ preVote: true, checkQuorum: true });
    const term = net.node("a").status().term;
    expect(net.node("a").transferLeadership("b")).toEqual({ ok: true });
    net.stabilize();
    expect(net.leader()).toBe("b");
    expect(net.node("b").status().term).toBe(term + 1);
    expect(net.node("a").status()).toMatchObject({ role: "follower", leader: "b" });
  });

  test("§3.10 the leader catches a lagging target up first, and drops proposals meanwhile", () => {
    const net = leaderOf3();
    net.isolate("c");
    net.propose("a", "x");
    net.heal();
    const a = net.node("a");
    a.transferLeadership("c");
    expect(a.propose(encoder.encode("y"))).toMatchObject({ ok: false, reason: "dropped" });
    net.stabilize();
    expect(net.leader()).toBe("c");
    expect(net.appliedTexts("c")).toEqual(["x"]);
  });

  test("§3.10 a transfer to an unreachable target is abandoned after an election timeout", () => {
    const net = leaderOf3();
    net.isolate("c");
    const a = net.node("a");
    a.transferLeadership("c");
    net.stabilize();
    expect(a.propose(encoder.encode("x")).ok).toBe(false);
    for (let i = 0; i < 10; i++) a.tick();
    expect(a.status().role).toBe("leader");
    expect(a.propose(encoder.encode("x")).ok).toBe(true);
  });
});

describe("§7 snapshots", () => {
  test("§7 a follower behind the compacted log gets a snapshot, restores it, then replicates", () => {
    const net = leaderOf3();
    net.isolate("c");
    for (let i = 0; i < 1100; i++) net.node("a").propose(encoder.encode(`x${i}`));
    net.stabilize();
    const a = net.node("a");
    const applied = a.status().applied;
    a.compact({ index: applied, data: encoder.encode("image") });
    net.heal();
    const c = net.node("c");
    let snapshotIndex = 0;
    for (let round = 0; round < 10 && snapshotIndex === 0; round++) {
      a.tick();
      for (const id of ["a", "b", "c"]) {
        const rd = id === "c" && c.hasReady() ? c.ready() : null;
        if (rd?.snapshot) snapshotIndex = rd.snapshot.meta.index;
        if (rd !== null) {
          for (const m of rd.messages) net.node(m.to).step(m);
          c.advance();
        }
        const other = net.drain(id);
        for (const m of other?.messages ?? []) net.node(m.to).step(m);
      }
    }
    expect(snapshotIndex).toBe(applied);
    net.stabilize();
    expect(c.status()).toMatchObject({ commit: a.status().commit, applied: a.status().applied });
    net.propose("a", "after");
    expect(c.status().lastIndex).toBe(a.status().lastIndex);
    expect(net.appliedTexts("c")).toEqual(["after"]);
  });

  test("§7 the snapshot carries the configuration in effect and restoring adopts it", () => {
    const node = new RawNode(nodeOptions("d"));
    const snapshot = { meta: { index: 50, term: 3, confState: { voters: ["a", "b", "c"], learners: ["d"] } }, data: encoder.encode("s") };
    node.step({ type: "snap", from: "a", to: "d", term: 3, snapshot });
    const rd = node.ready();
    expect(rd.snapshot).toBe(snapshot);
    expect(rd.committedEntries).toEqual([]);
    expect(ofType(rd.messages, "app-resp")[0]).toMatchObject({ index: 50, reject: false });
    node.advance();
    expect(node.status()).toMatchObject({ commit: 50, applied: 50, lastIndex: 50, confState: snapshot.meta.confState });
  });

  test("§7 a snapshot the follower's log already covers only fast-forwards the commit index", () => {
    const node = restoredNode("b", { terms: [1, 1, 1], term: 1 });
    drain(node);
    const snapshot = { meta: { index: 2, term: 1, confState: { voters: ["a", "b", "c"], learners: [] } }, data: encoder.encode("s") };
    node.step({ type: "snap", from: "a", to: "b", term: 1, snapshot });
    const rd = drain(node);
    expect(rd?.snapshot).toBeNull();
    expect(node.status()).toMatchObject({ commit: 2, lastIndex: 3 });
  });

  test("§7 compact asserts the snapshot is at the applied index", () => {
    const net = leaderOf3();
    expect(() => net.node("a").compact({ index: 1, data: new Uint8Array(0) })).toThrow();
  });
});

describe("flow control and limits", () => {
  test("flow control: at most inflightMessagesMax appends are in flight to a follower", () => {
    const net = leaderOf3({ limits: { ...raftLimits, inflightMessagesMax: 2, appendBytesMax: 1 } });
    net.filter = (m) => !(m.type === "app-resp" && m.from === "b");
    const a = net.node("a");
    net.log.length = 0;
    for (let i = 0; i < 10; i++) {
      a.propose(encoder.encode(`x${i}`));
      net.stabilize();
    }
    const withEntries = net.log.filter((m) => m.type === "app" && m.to === "b" && m.entries.length > 0);
    expect(withEntries.length).toBe(2);
    expect(withEntries.every((m) => m.type === "app" && m.entries.length === 1)).toBe(true);
  });

  test("flow control: the in-flight byte window caps unacknowledged bytes", () => {
    const net = leaderOf3({ limits: { ...raftLimits, inflightBytesMax: 100, appendBytesMax: 40 } });
    net.filter = (m) => !(m.type === "app-resp" && m.from === "b");
    const a = net.node("a");
    net.log.length = 0;
    for (let i = 0; i < 10; i++) a.propose(new Uint8Array(30));
    net.stabilize();
    let bytes = 0;
    for (const m of net.log) if (m.type === "app" && m.to === "b") for (const e of m.entries) bytes += e.data.length;
    expect(bytes).toBeLessThanOrEqual(100 + 30);
    expect(bytes).toBeGreaterThan(0);
  });

  test("appendBytesMax: one append carries at least one entry and at most the byte cap", () => {
    const net = leaderOf3({ limits: { ...raftLimits, appendBytesMax: 100 } });
    const a = net.node("a");
    net.log.length = 0;
    a.propose(new Uint8Array(500));
    for (let i = 0; i < 10; i++) a.propose(new Uint8Array(30));
    net.stabilize();
    const sizes = net.log.filter((m) => m.type === "app" && m.to === "b" && m.entries.length > 0).map((m) => (m.type === "app" ? m.entries.length : 0));
    expect(sizes).toEqual([1, 3, 3, 3, 1]);
  });

  test("uncommittedBytesMax: proposals beyond the uncommitted budget are dropped", () => {
    const net = leaderOf3({ limits: { ...raftLimits, uncommittedBytesMax: 100 } });
    net.isolate("b");
    net.isolate("c");
    const a = net.node("a");
    expect(a.propose(new Uint8Array(60)).ok).toBe(true);
    expect(a.propose(new Uint8Array(60))).toMatchObject({ ok: false, reason: "dropped" });
    net.heal();
    net.tickAll(2);
    expect(a.propose(new Uint8Array(60)).ok).toBe(true);
  });

  test("not-leader: proposals on a follower name the leader", () => {
    const net = leaderOf3();
    expect(net.node("b").propose(encoder.encode("x"))).toEqual({ ok: false, reason: "not-leader", leader: "a" });
    expect(net.node("b").transferLeadership("c")).toEqual({ ok: false, reason: "not-leader", leader: "a" });
  });

  test("reportUnreachable moves a replicating follower back to probe", () => {
    const net = leaderOf3();
    const a = net.node("a");
    expect(a.status().progress.get("b")?.state).toBe("replicate");
    a.reportUnreachable("b");
    expect(a.status().progress.get("b")?.state).toBe("probe");
  });
});

describe("bootstrap and restart", () => {
  test("bootstrap writes conf-change entries 1..n of term 1, committed, handed out to apply", () => {
    const node = new RawNode(nodeOptions("a", { bootstrapVoters: ["a", "b", "c"] }));
    const rd = node.ready();
    expect(rd.hardState).toEqual({ term: 1, votedFor: null, commit: 3 });
    expect(rd.entries.map((e) => [e.index, e.term, e.type])).toEqual([
      [1, 1, "conf-change"],
      [2, 1, "conf-change"],
      [3, 1, "conf-change"],
    ]);
    expect(rd.committedEntries.map((e) => decodeConfChange(e.data))).toEqual(["a", "b", "c"].map((nodeId) => ({ type: "add-voter", nodeId })));
    node.advance();
    expect(node.status()).toMatchObject({ commit: 3, applied: 3, confState: { voters: ["a", "b", "c"], learners: [] } });
    expect(node.hasReady()).toBe(false);
  });

  test("restart rebuilds the configuration from the applied log and re-hands out (applied, commit]", () => {
    const net = leaderOf3();
    net.propose("a", "x");
    net.propose("a", "y");
    const before = net.node("b").status();
    const entries: import("../../server/raft/types.ts").Entry[] = [];
    for (const e of net.applied.get("b") ?? []) entries.push(e);
    const node = new RawNode(
      nodeOptions("b", {
        persisted: { hardState: { term: before.term, votedFor: before.votedFor, commit: before.commit }, snapshot: null, entries, applied: 4 },
      }),
    );
    expect(node.status().confState.voters).toEqual(["a", "b", "c"]);
    const rd = node.ready();
    expect(rd.hardState).toBeNull();
    expect(rd.entries).toEqual([]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([5, 6]);
    node.advance();
  });

  test("a node that is not in the configuration never campaigns", () => {
    const node = new RawNode(nodeOptions("z"));
    for (let i = 0; i < 100; i++) node.tick();
    expect(node.status().role).toBe("follower");
    expect(drain(node)).toBeNull();
  });

  test("HardState appears in a Ready only when it changed", () => {
    const net = leaderOf3();
    const b = net.node("b");
    b.step(heartbeat("a", "b", b.status().term, b.status().commit));
    expect(b.ready().hardState).toBeNull();
    b.advance();
    b.step(app("a", "b", b.status().term, { index: b.status().lastIndex, logTerm: b.status().term }));
    expect(b.ready().hardState).toBeNull();
    b.advance();
  });
});
