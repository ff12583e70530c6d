/**
 * @module The simulator as a test: a thousand seeds in fast mode (shorter safety phase) must run
 * without a single violation, and a run must be an exact function of its seed.
 */
import { describe, expect, test } from "bun:test";
import { formatViolation, runSeed, type RunResult } from "./simulator.ts";

/** Fast mode: enough steps for elections, faults and a liveness phase; ~1 ms a seed. */
export const fastSteps = 1000;
const seedCount = 2000;

function fingerprint(result: RunResult): string {
  return JSON.stringify({
    steps: result.steps,
    liveness: result.livenessSteps,
    actions: result.actions,
    proposals: result.proposals,
    network: result.network,
    violation: result.violation,
  });
}

describe("deterministic cluster simulator", () => {
  test(`${seedCount} seeds in fast mode break no property`, () => {
    const failures: string[] = [];
    let steps = 0;
    for (let seed = 1; seed <= seedCount; seed += 1) {
      const result = runSeed(seed, { safetySteps: fastSteps });
      steps += result.steps;
      if (result.violation !== null) failures.push(formatViolation(result));
    }
    if (failures.length > 0) console.log(failures.join("\n"));
    expect(failures).toEqual([]);
    expect(steps).toBeGreaterThan(seedCount * fastSteps);
  }, 180_000);

  test("a seed replays exactly", () => {
    for (const seed of [7, 1234, 99_991]) {
      expect(fingerprint(runSeed(seed))).toBe(fingerprint(runSeed(seed)));
    }
  });

  test("runs do exercise faults, snapshots, reads and membership changes", () => {
    let crashes = 0;
    let snapshots = 0;
    let reads = 0;
    let membership = 0;
    let committed = 0;
    for (let seed = 1; seed <= 200; seed += 1) {
      const result = runSeed(seed, { safetySteps: fastSteps });
      crashes += result.crashes;
      snapshots += result.snapshotsInstalled;
      reads += result.readsServed;
      membership += result.actions.membership;
      committed += result.proposals.committed;
    }
    expect(crashes).toBeGreaterThan(100);
    expect(snapshots).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(50);
    expect(membership).toBeGreaterThan(20);
    expect(committed).toBeGreaterThan(500);
  });
});
