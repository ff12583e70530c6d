/**
 * @module Unit tests of the safety checkers on hand-made histories: each property must flag the
 * classic way of breaking it, and stay quiet on a legal history. If these pass but the simulator
 * finds nothing, the simulator's fault model is the suspect, not the checkers.
 */
import { describe, expect, test } from "bun:test";
import { SafetyChecker, Violation, checkApplyBatch, checkCommit } from "./checkers.ts";
import type { LogView } from "./storage.ts";
import { noTerm } from "./storage.ts";

/** A log given as the term of each index from 1. */
function log(terms: number[], snapshotIndex = 0): LogView {
  return {
    snapshotIndex,
    lastIndex: () => terms.length,
    termAt: (index) => (index < snapshotIndex ? noTerm : index === 0 ? 0 : (terms[index - 1] ?? noTerm)),
  };
}

function kindOf(run: () => void): string | null {
  try {
    run();
    return null;
  } catch (error) {
    if (error instanceof Violation) return error.kind;
    throw error;
  }
}

describe("election safety (§5.2)", () => {
  test("two leaders in one term are flagged, even at different times", () => {
    const checker = new SafetyChecker();
    checker.observeRole("n1", 3, true, log([1, 1, 3]));
    checker.observeRole("n1", 3, false, log([1, 1, 3]));
    expect(kindOf(() => checker.observeRole("n2", 3, true, log([1, 1, 3])))).toBe("election-safety");
  });

  test("one leader per term across terms is fine", () => {
    const checker = new SafetyChecker();
    checker.observeRole("n1", 2, true, log([1, 2]));
    checker.observeRole("n1", 2, true, log([1, 2, 2]));
    expect(kindOf(() => checker.observeRole("n2", 3, true, log([1, 2, 2, 3])))).toBeNull();
  });
});

describe("leader append-only (§5.3)", () => {
  test("a leader rewriting its own entries in its term is flagged", () => {
    const checker = new SafetyChecker();
    checker.observeRole("n1", 2, true, log([1, 2, 2]));
    expect(kindOf(() => checker.checkWrite("n1", 2, 4))).toBeNull();
    expect(kindOf(() => checker.checkWrite("n1", 2, 3))).toBe("leader-append-only");
  });

  test("after a newer term the old leader may be overwritten", () => {
    const checker = new SafetyChecker();
    checker.observeRole("n1", 2, true, log([1, 2, 2]));
    expect(kindOf(() => checker.checkWrite("n1", 3, 2))).toBeNull();
  });
});

describe("log matching (§5.3)", () => {
  test("one (index, term) with two contents is flagged", () => {
    const checker = new SafetyChecker();
    checker.recordEntry("n1", 5, 2, 100, 2);
    expect(kindOf(() => checker.recordEntry("n2", 5, 2, 101, 2))).toBe("log-matching");
  });

  test("one (index, term) after two different predecessor terms is flagged", () => {
    const checker = new SafetyChecker();
    checker.recordEntry("n1", 5, 3, 100, 2);
    expect(kindOf(() => checker.recordEntry("n2", 5, 3, 100, 1))).toBe("log-matching");
  });
});

describe("state machine safety (§5.4.3)", () => {
  test("two different entries applied at one index are flagged", () => {
    const checker = new SafetyChecker();
    checker.recordApplied("n1", 1, 1, 7, 1);
    expect(kindOf(() => checker.recordApplied("n2", 1, 2, 8, 2))).toBe("state-machine-safety");
  });

  test("one payload applied at two indexes is flagged", () => {
    const checker = new SafetyChecker();
    checker.recordApplied("n1", 1, 1, 7, 1);
    expect(kindOf(() => checker.recordApplied("n1", 2, 1, 7, 1))).toBe("state-machine-safety");
  });
});

describe("leader completeness (§5.4)", () => {
  test("a later-term leader missing a committed entry is flagged", () => {
    const checker = new SafetyChecker();
    checker.recordApplied("n1", 1, 1, 7, 2);
    checker.recordApplied("n1", 2, 2, 8, 2);
    expect(kindOf(() => checker.observeRole("n3", 3, true, log([1, 3])))).toBe("leader-completeness");
  });

  test("a stale leader of an earlier term is not held to later commits", () => {
    const checker = new SafetyChecker();
    checker.recordApplied("n1", 2, 3, 8, 3);
    expect(kindOf(() => checker.observeRole("n3", 2, true, log([1, 2])))).toBeNull();
  });

  test("an entry committed while a later-term leader already leads is checked against it", () => {
    const checker = new SafetyChecker();
    checker.observeRole("n2", 5, true, log([1, 5]));
    expect(kindOf(() => checker.recordApplied("n1", 2, 2, 9, 4))).toBe("leader-completeness");
  });
});

describe("per-node order and commit index", () => {
  test("gaps and repeats in applied entries are flagged", () => {
    expect(kindOf(() => checkApplyBatch("n1", 3, 4, 6, 6))).toBeNull();
    expect(kindOf(() => checkApplyBatch("n1", 3, 5, 6, 6))).toBe("apply-order");
    expect(kindOf(() => checkApplyBatch("n1", 3, 3, 6, 6))).toBe("apply-order");
    expect(kindOf(() => checkApplyBatch("n1", 3, 4, 7, 6))).toBe("apply-order");
  });

  test("a commit index that regresses or outruns the durable log is flagged", () => {
    expect(kindOf(() => checkCommit("n1", 4, 5, 5))).toBeNull();
    expect(kindOf(() => checkCommit("n1", 4, 3, 5))).toBe("commit-index");
    expect(kindOf(() => checkCommit("n1", 4, 6, 5))).toBe("commit-index");
  });
});

describe("linearizable reads (thesis §6.4)", () => {
  test("a read index behind an acknowledged write is flagged", () => {
    const checker = new SafetyChecker();
    expect(kindOf(() => checker.checkRead("n1", "r1", 5, 5))).toBeNull();
    expect(kindOf(() => checker.checkRead("n1", "r2", 4, 5))).toBe("linearizability");
  });
});
