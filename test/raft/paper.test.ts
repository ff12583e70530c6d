/**
 * @module Raft paper tests (after etcd-io/raft `raft_paper_test.go`): one test per claim of the
 * paper / thesis, tagged with its section, run against the pure core through RawNode only.
 */
import { describe, expect, test } from "bun:test";
import { RawNode } from "../../server/raft/raw-node.ts";
import type { Message, NodeId } from "../../server/raft/types.ts";
import { Network, nodeOptions } from "./network.ts";
import {
  app,
  appResp,
  drain,
  drainMessages,
  encoder,
  entriesOfTerms,
  ofType,
  restoredNode,
  tickUntil,
  vote,
  voteResp,
} from "./helpers.ts";

/** Make a restored node leader of `term + 1` by ticking it to candidacy and granting votes. */
function elect(node: RawNode, grants: readonly NodeId[]): Message[] {
  tickUntil(node, () => node.status().role === "candidate");
  drain(node);
  const { id, term } = node.status();
  for (const from of grants) node.step(voteResp(from, id, term, false));
  expect(node.status().role).toBe("leader");
  return drainMessages(node);
}

describe("§5.1 terms", () => {
  test("§5.1 a follower, candidate or leader seeing a higher term adopts it and becomes follower", () => {
    for (const role of ["follower", "candidate", "leader"] as const) {
      const node = restoredNode("a", { terms: [1], term: 1 });
      if (role === "candidate") tickUntil(node, () => node.status().role === "candidate");
      if (role === "leader") elect(node, ["b"]);
      const term = node.status().term;
      node.step(app("b", "a", term + 5, { index: 0, logTerm: 0 }));
      expect(node.status()).toMatchObject({ role: "follower", term: term + 5, leader: "b" });
    }
  });

  test("§5.1 a request with a stale term is rejected", () => {
    const node = restoredNode("a", { terms: [1, 2], term: 3, overrides: { checkQuorum: true } });
    drain(node);
    node.step(app("b", "a", 2, { index: 2, logTerm: 2, entries: entriesOfTerms([2], 3) }));
    const rd = drain(node);
    expect(node.status().lastIndex).toBe(2);
    expect(rd?.messages).toEqual([appResp("a", "b", 3, 0)]);
  });
});

describe("§5.1 terms (continued)", () => {
  test("§5.1 a stale candidate's vote request is rejected with the current term, which it adopts", () => {
    const node = restoredNode("a", { terms: [1], term: 7 });
    node.step(vote("b", "a", 3, 1, 1));
    const resp = ofType(drainMessages(node), "vote-resp")[0];
    expect(resp).toMatchObject({ term: 7, reject: true });
    const candidate = restoredNode("b", { terms: [1], term: 2 });
    tickUntil(candidate, () => candidate.status().role === "candidate");
    candidate.step(voteResp("a", "b", 7, true));
    expect(candidate.status()).toMatchObject({ role: "follower", term: 7 });
  });

  test("§5.1 a leader that hears of a higher term from a follower steps down", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    elect(node, ["b"]);
    node.step(appResp("c", "a", 9, 0));
    expect(node.status()).toMatchObject({ role: "follower", term: 9, leader: null });
  });
});

describe("determinism", () => {
  test("the same seed and inputs produce the same messages, byte for byte", () => {
    const trace = (): string => {
      const net = Network.bootstrap(["a", "b", "c"], { preVote: true, checkQuorum: true });
      net.tickAll(40);
      const leader = net.leader() ?? "a";
      for (let i = 0; i < 5; i++) net.propose(leader, `x${i}`);
      net.isolate(leader);
      net.tickAll(40);
      return JSON.stringify(net.log, (_, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
    };
    const first = trace();
    expect(first.length).toBeGreaterThan(1000);
    expect(trace()).toBe(first);
  });
});

describe("§5.2 leader election", () => {
  test("§5.2 a follower that hears nothing becomes candidate, votes for itself and requests votes", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    tickUntil(node, () => node.status().role === "candidate", 20);
    const rd = drain(node);
    expect(node.status()).toMatchObject({ term: 2, votedFor: "a" });
    expect(rd?.hardState).toEqual({ term: 2, votedFor: "a", commit: 0 });
    expect(ofType(rd?.messages ?? [], "vote").map((m) => [m.to, m.term, m.index, m.logTerm])).toEqual([
      ["b", 2, 1, 1],
      ["c", 2, 1, 1],
    ]);
  });

  test("§5.2 a server votes for at most one candidate per term (first come, first served)", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    node.step(vote("b", "a", 2, 1, 1));
    node.step(vote("c", "a", 2, 1, 1));
    node.step(vote("b", "a", 2, 1, 1)); // a retransmission is granted again
    const resps = ofType(drainMessages(node), "vote-resp");
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      ["b", false],
      ["c", true],
      ["b", false],
    ]);
    expect(node.status().votedFor).toBe("b");
  });

  test("§5.2 election timeouts are randomized in [electionTicks, 2 × electionTicks)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 60; seed++) {
      const node = new RawNode(nodeOptions("a", { bootstrapVoters: ["a", "b", "c"] }, seed));
      drain(node); // the founding configuration takes effect once applied
      const ticks = tickUntil(node, () => node.status().role === "candidate", 40);
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(5);
  });

  test("§5.2 a candidate wins with votes from a majority of the cluster", () => {
    const voters = ["a", "b", "c", "d", "e"];
    const node = restoredNode("a", { terms: [1], term: 1, voters });
    tickUntil(node, () => node.status().role === "candidate");
    drain(node);
    node.step(voteResp("b", "a", 2, false));
    node.step(voteResp("c", "a", 2, true));
    expect(node.status().role).toBe("candidate");
    node.step(voteResp("d", "a", 2, false));
    expect(node.status().role).toBe("leader");
    // The new leader appends its no-op (thesis §6.4) and sends it to everyone.
    const apps = ofType(drainMessages(node), "app");
    expect(apps.map((m) => m.to).sort()).toEqual(["b", "c", "d", "e"]);
    expect(apps[0]?.entries).toEqual([{ term: 2, index: 2, type: "normal", data: new Uint8Array(0) }]);
  });

  test("§5.2 a candidate that loses a majority of votes returns to follower", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    tickUntil(node, () => node.status().role === "candidate");
    node.step(voteResp("b", "a", 2, true));
    node.step(voteResp("c", "a", 2, true));
    expect(node.status()).toMatchObject({ role: "follower", term: 2 });
  });

  test("§5.2 a candidate receiving an append from a leader of its term becomes follower", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    tickUntil(node, () => node.status().role === "candidate");
    node.step(app("b", "a", 2, { index: 1, logTerm: 1 }));
    expect(node.status()).toMatchObject({ role: "follower", leader: "b", term: 2 });
  });

  test("§5.2 a candidate whose election times out starts a new one in the next term", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    tickUntil(node, () => node.status().role === "candidate");
    tickUntil(node, () => node.status().term === 3, 40);
    expect(node.status()).toMatchObject({ role: "candidate", votedFor: "a" });
  });

  test("§5.2 a group elects exactly one leader and everyone follows it", () => {
    const net = Network.bootstrap(["a", "b", "c"]);
    net.tickAll(30);
    const leader = net.leader();
    expect(leader).not.toBeNull();
    for (const node of net.nodes.values()) expect(node.status().leader).toBe(leader);
  });
});

describe("§5.3 log replication", () => {
  test("§5.3 the leader appends a proposal to its log and sends it to every follower", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    elect(node, ["b"]);
    node.step(appResp("b", "a", 2, 2)); // both followers acked the no-op: probe → replicate
    node.step(appResp("c", "a", 2, 2));
    drain(node);
    const result = node.propose(encoder.encode("x"));
    expect(result).toEqual({ ok: true, index: 3, term: 2 });
    const rd = node.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([3]);
    const apps = ofType(rd.messages, "app");
    expect(apps.length).toBe(2);
    node.advance();
  });

  test("§5.3 a follower rejects an append whose previous index/term do not match", () => {
    const node = restoredNode("a", { terms: [1, 1, 2], term: 2 });
    drain(node);
    node.step(app("b", "a", 3, { index: 3, logTerm: 3, entries: entriesOfTerms([3], 4) }));
    const resp = ofType(drainMessages(node), "app-resp")[0];
    expect(resp).toMatchObject({ reject: true, index: 3, rejectHint: 3, logTerm: 2 });
    expect(node.status().lastIndex).toBe(3);
  });

  test("§5.3 a follower deletes a conflicting suffix and takes the leader's entries", () => {
    const node = restoredNode("a", { terms: [1, 1, 2, 2], term: 2 });
    drain(node);
    node.step(app("b", "a", 3, { index: 2, logTerm: 1, entries: entriesOfTerms([3, 3], 3), commit: 0 }));
    const rd = node.ready();
    // Ready.entries starts at the overwrite point: the shell deletes index ≥ 3 and writes these.
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([
      [3, 3],
      [4, 3],
    ]);
    expect(ofType(rd.messages, "app-resp")[0]).toMatchObject({ reject: false, index: 4 });
    node.advance();
  });

  test("§5.3 an append with entries already present is idempotent", () => {
    const node = restoredNode("a", { terms: [1, 1, 2], term: 2 });
    drain(node);
    node.step(app("b", "a", 2, { index: 1, logTerm: 1, entries: entriesOfTerms([1, 2], 2) }));
    const rd = node.ready();
    expect(rd.entries).toEqual([]);
    expect(node.status().lastIndex).toBe(3);
    node.advance();
  });

  test("§5.3 the leader commits an entry once a majority stored it, and followers learn the commit", () => {
    const net = Network.bootstrap(["a", "b", "c", "d", "e"]);
    net.campaign("a");
    net.isolate("d");
    net.isolate("e");
    net.propose("a", "x");
    expect(net.node("a").status().commit).toBe(7);
    expect(net.appliedTexts("a")).toEqual(["x"]);
    expect(net.appliedTexts("b")).toEqual(["x"]);
    net.isolate("c");
    net.propose("a", "y");
    expect(net.node("a").status().commit).toBe(7); // only a and b: no majority of 5
  });

  test("§5.3 a follower commits up to min(leader commit, last new entry)", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    drain(node);
    node.step(app("b", "a", 2, { index: 1, logTerm: 1, entries: entriesOfTerms([2], 2), commit: 5 }));
    const rd = drain(node);
    expect(node.status().commit).toBe(2);
    expect(rd?.committedEntries.map((e) => e.index)).toEqual([1, 2]);
  });

  test("§5.3 fast backtracking: the leader skips a divergent term per round trip", () => {
    // Follower b has 30 entries of term 2 the leader does not; the leader has term 3 from index 2.
    const b = restoredNode("b", { terms: [1, ...Array<number>(30).fill(2)], term: 2 });
    const a = restoredNode("a", { terms: [1, 3, 3], term: 3 });
    const net = new Network();
    net.add("a", a);
    net.add("b", b);
    net.add("c", restoredNode("c", { terms: [1, 3, 3], term: 3 }));
    net.stabilize();
    net.campaign("a");
    net.propose("a", "x");
    // One rejection suffices: b's hint (index 3, term 2) lets the leader jump straight to index 1.
    const rejects = net.log.filter((m) => m.type === "app-resp" && m.from === "b" && m.reject).length;
    expect(rejects).toBe(1);
    expect(b.status().lastIndex).toBe(a.status().lastIndex);
    expect(net.appliedTexts("b")).toEqual(net.appliedTexts("a"));
  });
});

describe("§5.4 safety", () => {
  test("§5.4.1 a vote is granted only to a candidate whose log is at least as up-to-date", () => {
    const cases: Array<[index: number, logTerm: number, granted: boolean]> = [
      [3, 2, true], // same last term, same length
      [4, 2, true], // same last term, longer
      [2, 2, false], // same last term, shorter
      [9, 1, false], // lower last term, however long
      [1, 3, true], // higher last term, however short
    ];
    for (const [index, logTerm, granted] of cases) {
      const node = restoredNode("a", { terms: [1, 2, 2], term: 2 });
      node.step(vote("b", "a", 3, index, logTerm));
      const resp = ofType(drainMessages(node), "vote-resp")[0];
      expect([index, logTerm, resp?.reject === false]).toEqual([index, logTerm, granted]);
    }
  });

  test("§5.4.1 bug voteWithoutLogCheck grants a stale candidate (test-only)", () => {
    const node = restoredNode("a", { terms: [1, 2, 2], term: 2, overrides: { bugs: { voteWithoutLogCheck: true } } });
    node.step(vote("b", "a", 3, 1, 1));
    expect(ofType(drainMessages(node), "vote-resp")[0]?.reject).toBe(false);
  });

  test("§5.4.2 a leader never commits an earlier-term entry by counting replicas (Figure 8)", () => {
    const node = restoredNode("a", { terms: [1, 2], term: 2 });
    elect(node, ["b"]); // term 3, no-op at index 3
    node.step(appResp("b", "a", 3, 2));
    expect(node.status().commit).toBe(0);
    node.step(appResp("b", "a", 3, 3));
    expect(node.status().commit).toBe(3); // the current-term entry commits, and with it index 2
  });

  test("§5.4.2 bug commitOldTermByCount commits the earlier-term entry (test-only)", () => {
    const node = restoredNode("a", { terms: [1, 2], term: 2, overrides: { bugs: { commitOldTermByCount: true } } });
    elect(node, ["b"]);
    node.step(appResp("b", "a", 3, 2));
    expect(node.status().commit).toBe(2);
  });

  test("§5.4 forgetVote bug leaves votedFor out of the HardState (test-only)", () => {
    const node = restoredNode("a", { terms: [1], term: 1, overrides: { bugs: { forgetVote: true } } });
    node.step(vote("b", "a", 2, 1, 1));
    expect(drain(node)?.hardState).toEqual({ term: 2, votedFor: null, commit: 0 });
  });
});

describe("§10.2.1 leader's own persistence", () => {
  test("§10.2.1 the leader's log counts toward commit only after advance()", () => {
    const node = restoredNode("a", { terms: [1], term: 1 });
    elect(node, ["b"]);
    node.step(appResp("b", "a", 2, 2));
    expect(node.status().commit).toBe(2);
    node.propose(encoder.encode("x"));
    const rd = node.ready(); // entries handed out, not yet durable
    expect(rd.entries.map((e) => e.index)).toEqual([3]);
    node.step(appResp("c", "a", 2, 3)); // one follower has it: 1 of 3 without the leader
    expect(node.status().commit).toBe(2);
    node.advance(); // now durable locally: leader + c
    expect(node.status().commit).toBe(3);
  });

  test("§10.2.1 a single-voter group commits on its own persistence", () => {
    const net = Network.bootstrap(["a"]);
    net.campaign("a");
    const node = net.node("a");
    node.propose(encoder.encode("x"));
    expect(node.status().commit).toBe(2);
    net.stabilize();
    expect(node.status().commit).toBe(3);
    expect(net.appliedTexts("a")).toEqual(["x"]);
  });
});
