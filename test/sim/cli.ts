/**
 * @module Command line for the simulator: `npm run sim -- --seeds N [--from S0] [--seed S]
 * [--steps K] [--bug NAME] [--profile NAME] [--verbose] [--trace]`. Runs seeds S0 … S0+N-1 (or just S), prints one `SEED=…`
 * line per violation and a summary (steps, actions and faults by kind, proposals, seeds/s), and
 * exits 1 if any run broke a property. Wall-clock time is measured here only, for the report: the
 * runs themselves never read a clock.
 */
import type { RaftBugs } from "../../server/raft/types.ts";
import { actionKinds, faultKinds, profileNames, type ActionKind, type ProfileName, type ScenarioOverrides } from "./scenario.ts";
import { formatViolation, runSeed, type RunResult } from "./simulator.ts";

interface CliOptions {
  readonly from: number;
  readonly count: number;
  readonly overrides: ScenarioOverrides;
  readonly verbose: boolean;
  readonly trace: boolean;
}

const bugNames: readonly (keyof RaftBugs)[] = ["commitOldTermByCount", "voteWithoutLogCheck", "forgetVote"];

/** A bad command line: reported with the usage, unlike a crash inside a run. */
class CliError extends Error {}

function parseArgs(argv: readonly string[]): CliOptions {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("--")) throw new CliError(`unexpected argument ${arg}`);
    const next = argv[i + 1];
    if (arg === "--trace" || arg === "--verbose") flags.add(arg);
    else if (next === undefined) throw new CliError(`${arg} needs a value`);
    else {
      values.set(arg, next);
      i += 1;
    }
  }
  const int = (name: string, fallback: number): number => {
    const raw = values.get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw new CliError(`${name} must be a non-negative integer`);
    return n;
  };
  const single = values.get("--seed");
  const from = single === undefined ? int("--from", 1) : int("--seed", 0);
  const count = single === undefined ? int("--seeds", 100) : 1;
  const bug = values.get("--bug");
  if (bug !== undefined && !bugNames.includes(bug as keyof RaftBugs)) throw new CliError(`--bug must be one of ${bugNames.join(", ")}`);
  const steps = values.get("--steps");
  const profile = values.get("--profile");
  if (profile !== undefined && profile !== "random" && !profileNames.includes(profile as ProfileName)) {
    throw new CliError(`--profile must be random or one of ${profileNames.join(", ")}`);
  }
  const overrides: ScenarioOverrides = {
    ...(profile === undefined ? {} : { profile }),
    ...(steps === undefined ? {} : { safetySteps: int("--steps", 0) }),
    ...(bug === undefined ? {} : { bugs: { [bug]: true } }),
  };
  return { from, count, overrides, verbose: single !== undefined || flags.has("--verbose"), trace: flags.has("--trace") };
}

interface Totals {
  runs: number;
  steps: number;
  livenessSteps: number;
  crashes: number;
  snapshots: number;
  accepted: number;
  committed: number;
  dropped: number;
  reads: number;
  violations: number;
  violationKinds: Map<string, number>;
  actions: Record<ActionKind, number>;
}

function add(totals: Totals, result: RunResult): void {
  totals.runs += 1;
  totals.steps += result.steps;
  totals.livenessSteps += result.livenessSteps;
  totals.crashes += result.crashes;
  totals.snapshots += result.snapshotsInstalled;
  totals.accepted += result.proposals.accepted;
  totals.committed += result.proposals.committed;
  totals.dropped += result.proposals.dropped;
  totals.reads += result.readsServed;
  for (const kind of actionKinds) totals.actions[kind] += result.actions[kind];
  if (result.violation === null) return;
  totals.violations += 1;
  totals.violationKinds.set(result.violation.kind, (totals.violationKinds.get(result.violation.kind) ?? 0) + 1);
}

function main(): number {
  const options = parseArgs(process.argv.slice(2));
  const totals: Totals = {
    runs: 0, steps: 0, livenessSteps: 0, crashes: 0, snapshots: 0, accepted: 0, committed: 0, dropped: 0, reads: 0, violations: 0, violationKinds: new Map(),
    actions: Object.fromEntries(actionKinds.map((kind) => [kind, 0])) as Record<ActionKind, number>,
  };
  const started = performance.now();
  for (let seed = options.from; seed < options.from + options.count; seed += 1) {
    const result = runSeed(seed, options.overrides, options.trace ? (line) => console.log(line) : null);
    add(totals, result);
    if (result.violation !== null) console.log(formatViolation(result));
    else if (options.verbose) console.log(`SEED=${seed} ok steps=${result.steps} liveness=${result.livenessSteps} crashes=${result.crashes} committed=${result.proposals.committed}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const list = (kinds: readonly ActionKind[]): string => kinds.map((kind) => `${kind}=${totals.actions[kind]}`).join(" ");
  const faults = list(faultKinds);
  const requests = list(actionKinds.filter((kind) => !faultKinds.includes(kind)));
  const kinds = [...totals.violationKinds].map(([kind, n]) => `${kind}=${n}`).join(" ");
  console.log(`seeds ${options.from}..${options.from + options.count - 1}: ${totals.runs} runs, ${totals.violations} violations${kinds === "" ? "" : ` (${kinds})`}`);
  console.log(`steps ${totals.steps} (liveness ${totals.livenessSteps}), crashes ${totals.crashes}, snapshots installed ${totals.snapshots}, reads served ${totals.reads}`);
  console.log(`proposals accepted ${totals.accepted}, committed ${totals.committed}, dropped ${totals.dropped}`);
  console.log(`faults injected: ${faults}`);
  console.log(`client/operator requests: ${requests}`);
  console.log(`${seconds.toFixed(2)} s, ${(totals.runs / seconds).toFixed(0)} seeds/s, ${((seconds * 1000) / Math.max(1, totals.runs)).toFixed(2)} ms/seed`);
  return totals.violations === 0 ? 0 : 1;
}

const usage = "usage: npm run sim -- --seeds N [--from S0] | --seed S [--steps K] [--bug NAME] [--profile NAME] [--verbose] [--trace]";

function entry(): number {
  try {
    return main();
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    console.error(`${error.message}\n${usage}`);
    return 2;
  }
}

process.exit(entry());
