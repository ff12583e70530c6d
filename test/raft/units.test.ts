/**
 * @module Table-driven tests for the Raft core's small pure units: conf-change encoding, the seeded
 * PRNG, quorum arithmetic, the in-flight window and the in-memory log.
 */
import { describe, expect, test } from "bun:test";
import { decodeConfChange, encodeConfChange } from "../../server/raft/conf-change.ts";
import { RaftLog, termUnavailable } from "../../server/raft/log.ts";
import { seededRng } from "../../server/raft/prng.ts";
import { Inflights } from "../../server/raft/progress.ts";
import { committedIndex, tallyVotes } from "../../server/raft/quorum.ts";
import type { ConfChange } from "../../server/raft/types.ts";
import { entriesOfTerms } from "./helpers.ts";

describe("conf-change encoding", () => {
  const cases: ConfChange[] = [
    { type: "add-voter", nodeId: "n1" },
    { type: "add-learner", nodeId: "node-with-a-longer-name" },
    { type: "remove-node", nodeId: "ü" },
  ];
  for (const change of cases) {
    test(`round-trips ${change.type} ${change.nodeId}`, () => {
      const data = encodeConfChange(change);
      expect(data.length).toBe(2 + new TextEncoder().encode(change.nodeId).length);
      expect(decodeConfChange(data)).toEqual(change);
    });
  }
  test("asserts on malformed input", () => {
    expect(() => decodeConfChange(new Uint8Array([1, 0]))).toThrow();
    expect(() => decodeConfChange(new Uint8Array([2, 0, 65]))).toThrow();
    expect(() => decodeConfChange(new Uint8Array([1, 9, 65]))).toThrow();
    expect(() => decodeConfChange(new Uint8Array([1, 0, 0xff]))).toThrow();
    expect(() => encodeConfChange({ type: "add-voter", nodeId: "" })).toThrow();
  });
});

describe("seededRng", () => {
  test("is deterministic per seed and stays in range", () => {
    const a = seededRng(7);
    const b = seededRng(7);
    const c = seededRng(8);
    const xs = Array.from({ length: 100 }, () => a.nextInt(10));
    expect(Array.from({ length: 100 }, () => b.nextInt(10))).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.nextInt(10))).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 10)).toBe(true);
    expect(new Set(xs).size).toBe(10);
  });
});

describe("quorum", () => {
  const table: Array<[matches: number[], committed: number]> = [
    [[5], 5],
    [[5, 3], 3],
    [[5, 3, 1], 3],
    [[1, 5, 3, 4], 3],
    [[9, 9, 1, 1, 2], 2],
  ];
  for (const [matches, committed] of table) {
    test(`committedIndex(${matches.join(",")}) = ${committed}`, () => {
      const voters = matches.map((_, i) => `n${i}`);
      expect(committedIndex(voters, (id) => matches[Number(id.slice(1))] ?? 0)).toBe(committed);
    });
  }
  test("tallyVotes: won, lost, pending", () => {
    const voters = ["a", "b", "c"];
    expect(tallyVotes(voters, new Map([["a", true], ["b", true]]))).toBe("won");
    expect(tallyVotes(voters, new Map([["a", true], ["b", false], ["c", false]]))).toBe("lost");
    expect(tallyVotes(voters, new Map([["a", true], ["b", false]]))).toBe("pending");
    expect(tallyVotes(voters, new Map([["a", true], ["z", true]]))).toBe("pending"); // non-voters do not count
  });
});

describe("inflights", () => {
  test("full by count, full by bytes, freed in order", () => {
    const w = new Inflights(3, 100);
    w.add(1, 10);
    w.add(2, 10);
    expect(w.full()).toBe(false);
    w.add(5, 10);
    expect(w.full()).toBe(true);
    w.freeLE(2);
    expect([w.count, w.bytes, w.full()]).toEqual([1, 10, false]);
    w.add(6, 95);
    expect(w.full()).toBe(true); // 105 bytes ≥ 100
    w.freeFirstOne();
    expect([w.count, w.bytes]).toEqual([1, 95]);
    expect(() => w.add(6, 1)).toThrow(); // out of order
  });
});

describe("RaftLog", () => {
  function logOf(terms: number[]): RaftLog {
    const log = new RaftLog();
    for (const e of entriesOfTerms(terms)) log.appendLeader(e);
    return log;
  }
  test("term lookup, including compacted and beyond-the-end indexes", () => {
    const log = logOf([1, 1, 2, 3]);
    expect([log.term(0), log.term(3), log.term(4), log.term(5)]).toEqual([0, 2, 3, termUnavailable]);
    log.committed = 3;
    log.applied = 3;
    log.stableIndex = 4;
    log.compactTo(2);
    expect([log.term(1), log.term(2), log.term(3), log.firstIndex()]).toEqual([termUnavailable, 1, 2, 3]);
  });
  test("findConflictByTerm", () => {
    const log = logOf([1, 1, 2, 2, 5, 5]);
    const table: Array<[index: number, term: number, expected: [number, number]]> = [
      [6, 5, [6, 5]],
      [6, 4, [4, 2]],
      [6, 2, [4, 2]],
      [6, 1, [2, 1]],
      [6, 0, [0, 0]],
      [10, 3, [4, 2]],
    ];
    for (const [index, term, [ei, et]] of table) expect(log.findConflictByTerm(index, term)).toEqual({ index: ei, term: et });
  });
  test("maybeAppend truncates a conflicting suffix and marks it unstable", () => {
    const log = logOf([1, 1, 2, 2]);
    log.stableIndex = 4;
    expect(log.maybeAppend(2, 1, 3, entriesOfTerms([3], 3))).toBe(3);
    expect([log.lastIndex(), log.committed, log.stableIndex]).toEqual([3, 3, 2]);
    expect(log.unstableEntries().map((e) => e.term)).toEqual([3]);
    expect(log.maybeAppend(3, 2, 3, [])).toBe(-1);
  });
  test("never overwrites a committed entry", () => {
    const log = logOf([1, 1, 2]);
    log.committed = 3;
    expect(() => log.maybeAppend(1, 1, 3, entriesOfTerms([3, 3], 2))).toThrow();
  });
  test("slice respects the byte cap but always returns one entry", () => {
    const log = new RaftLog();
    for (let i = 1; i <= 5; i++) log.appendLeader({ term: 1, index: i, type: "normal", data: new Uint8Array(10) });
    expect(log.slice(1, 6, 5).length).toBe(1);
    expect(log.slice(1, 6, 25).length).toBe(2);
    expect(log.slice(2, 6, 1000).map((e) => e.index)).toEqual([2, 3, 4, 5]);
  });
});
