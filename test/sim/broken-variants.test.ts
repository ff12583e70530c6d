/**
 * @module Proof that the checkers have teeth: with each of the core's deliberate bugs switched on
 * (RaftOptions.bugs), the simulator must find a violation within a bounded number of seeds, using
 * the fault profile aimed at that bug. Each finding must replay exactly from its seed.
 */
import { describe, expect, test } from "bun:test";
import type { RaftBugs } from "../../server/raft/types.ts";
import type { ViolationKind } from "./checkers.ts";
import type { ProfileName } from "./scenario.ts";
import { formatViolation, runSeed, type RunResult } from "./simulator.ts";

interface Variant {
  readonly bug: keyof RaftBugs;
  readonly profile: ProfileName;
  /** Seeds tried before the test gives up (each takes about a millisecond). */
  readonly seedsMax: number;
  /** What the bug breaks; a liveness report alone does not count as catching it. */
  readonly kinds: readonly ViolationKind[];
}

const variants: readonly Variant[] = [
  { bug: "commitOldTermByCount", profile: "figure8", seedsMax: 300, kinds: ["leader-completeness", "state-machine-safety", "log-matching", "acknowledged-lost", "linearizability"] },
  { bug: "voteWithoutLogCheck", profile: "stale-candidate", seedsMax: 100, kinds: ["leader-completeness", "state-machine-safety", "log-matching", "acknowledged-lost", "linearizability"] },
  { bug: "forgetVote", profile: "election-crash", seedsMax: 200, kinds: ["election-safety", "leader-append-only", "log-matching", "leader-completeness", "state-machine-safety"] },
];

function firstFinding(variant: Variant): RunResult | null {
  for (let seed = 1; seed <= variant.seedsMax; seed += 1) {
    const result = runSeed(seed, { profile: variant.profile, bugs: { [variant.bug]: true } });
    const kind = result.violation?.kind;
    if (kind !== undefined && variant.kinds.includes(kind)) return result;
  }
  return null;
}

describe("the simulator catches each deliberately broken core", () => {
  for (const variant of variants) {
    test(`bugs.${variant.bug} is found within ${variant.seedsMax} seeds (profile ${variant.profile})`, () => {
      const found = firstFinding(variant);
      expect(found).not.toBeNull();
      if (found === null) return;
      console.log(`bugs.${variant.bug}: ${formatViolation(found).split("\n")[0]}`);
      const replay = runSeed(found.seed, { profile: variant.profile, bugs: { [variant.bug]: true } });
      expect(replay.violation).toEqual(found.violation);
    }, 120_000);
  }

  test("the CLI prints SEED=… for a finding and exits non-zero", () => {
    const cli = Bun.spawnSync([process.execPath, `${import.meta.dir}/cli.ts`, "--seeds", "10", "--bug", "voteWithoutLogCheck", "--profile", "stale-candidate"]);
    const out = cli.stdout.toString();
    expect(cli.exitCode).toBe(1);
    expect(out).toMatch(/^SEED=\d+ step=\d+ \[leader-completeness\]/m);
    expect(out).toMatch(/seeds\/s/);
  }, 60_000);

  test("the same profiles with a correct core stay clean", () => {
    const failures: string[] = [];
    for (const variant of variants) {
      for (let seed = 1; seed <= 100; seed += 1) {
        const result = runSeed(seed, { profile: variant.profile });
        if (result.violation !== null) failures.push(formatViolation(result));
      }
    }
    if (failures.length > 0) console.log(failures.join("\n"));
    expect(failures).toEqual([]);
  }, 120_000);
});
