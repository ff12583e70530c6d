/**
 * @module A run's shape, derived from its seed: cluster size, Raft timing and options, network
 * quality, how often each fault and client action happens, and the run's bounds. Tests pass
 * overrides to aim the simulator at one kind of bug (e.g. crash-heavy elections for forgetVote).
 */
import type { RaftBugs, RaftLimits } from "../../server/raft/types.ts";
import { SimRng, deriveSeed } from "./prng.ts";

/** Client and operator requests the simulator issues. */
const requestKinds = ["propose", "read", "membership", "compact", "transfer"] as const;
/** Faults the simulator injects. */
const faultKindList = ["crash", "pause", "partition-symmetric", "partition-asymmetric", "partition-one-way", "heal"] as const;

/** Everything the simulator can do between ticks and deliveries; counted per run in the summary. */
export const actionKinds = [...requestKinds, ...faultKindList] as const;

export type ActionKind = (typeof actionKinds)[number];
export type ActionWeights = Readonly<Record<ActionKind, number>>;

export interface NetworkProfile {
  /** Delivery delay in simulated time units (a tick is `tickPeriod` units). */
  readonly delayMin: number;
  readonly delayMax: number;
  readonly lossProbability: number;
  readonly duplicateProbability: number;
}

export interface Scenario {
  readonly seed: number;
  /** "random", or the bug-hunting profile this run uses (see `profiles`). */
  readonly profile: string;
  readonly nodeCount: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly limits: RaftLimits;
  /** Simulated time units per node tick (each node's clock drifts ±1 unit per tick). */
  readonly tickPeriod: number;
  readonly network: NetworkProfile;
  /** Mean simulated time between two scenario actions (faults and client requests). */
  readonly actionInterval: number;
  readonly weights: ActionWeights;
  /** Down time of a crashed node before it restarts, in time units. */
  readonly downtimeMin: number;
  readonly downtimeMax: number;
  readonly pauseMax: number;
  /** Probability a crash, pause or one-way cut hits the current leader rather than a random node. */
  readonly leaderTargetProbability: number;
  /** Probability a crash hits a node that has just voted in an election still undecided. */
  readonly voterTargetProbability: number;
  /** Probability a crash is armed to hit inside the node's next Ready (losing unsynced writes). */
  readonly crashInReadyProbability: number;
  /** Safety phase length in events (each event is one step, followed by every checker). */
  readonly safetySteps: number;
  /** Liveness phase budget: ticks of simulated time after healing everything. */
  readonly livenessTicks: number;
  readonly bugs: RaftBugs;
}

export type ScenarioOverrides = Partial<Omit<Scenario, "seed" | "weights" | "network" | "limits">> & {
  readonly weights?: Partial<ActionWeights>;
  readonly network?: Partial<NetworkProfile>;
  readonly limits?: Partial<RaftLimits>;
};

/** Default safety-phase length: about 2.5 ms a seed on one core (measured with `npm run sim`). */
export const defaultSafetySteps = 3000;

/** Actions that are faults (the rest are client and operator requests). */
export const faultKinds: readonly ActionKind[] = faultKindList;

const baseWeights: ActionWeights = {
  propose: 30,
  read: 6,
  membership: 4,
  compact: 5,
  transfer: 3,
  crash: 5,
  pause: 3,
  "partition-symmetric": 3,
  "partition-asymmetric": 2,
  "partition-one-way": 2,
  heal: 6,
};

function pickNetwork(rng: SimRng, tickPeriod: number): NetworkProfile {
  const delayMax = rng.pick([2, tickPeriod, 3 * tickPeriod, 8 * tickPeriod]);
  return {
    delayMin: 1,
    delayMax,
    lossProbability: rng.pick([0, 0, 0.02, 0.1, 0.3]),
    duplicateProbability: rng.pick([0, 0.02, 0.1]),
  };
}

function pickLimits(rng: SimRng): RaftLimits {
  // Tiny appends (one entry per message) and windows make Figure-8 interleavings reachable.
  return {
    appendBytesMax: rng.pick([1, 16, 64, 1024 * 1024]),
    inflightMessagesMax: rng.pick([1, 2, 8, 256]),
    inflightBytesMax: 32 * 1024 * 1024,
    uncommittedBytesMax: rng.pick([64, 1024, 64 * 1024 * 1024]),
    readIndexPendingMax: rng.pick([2, 64]),
  };
}

/** Scale each base weight by a per-seed factor in {0, 0.5, 1, 2, 4}: some runs lean on one fault. */
function pickWeights(rng: SimRng): ActionWeights {
  const out: Record<string, number> = {};
  for (const kind of actionKinds) {
    const factor = kind === "propose" ? 1 : rng.pick([0, 0.5, 1, 1, 2, 4]);
    out[kind] = baseWeights[kind] * factor;
  }
  return out as ActionWeights;
}

const quiet: ActionWeights = {
  propose: 0, read: 0, membership: 0, compact: 0, transfer: 0, crash: 0, pause: 0,
  "partition-symmetric": 0, "partition-asymmetric": 0, "partition-one-way": 0, heal: 0,
};

/**
 * Fault mixes aimed at one classic bug each; the seed mixes them into ordinary runs too.
 * - figure8: Raft Figure 8. Leaders fail right after appending (crash inside a Ready, mute
 *   links, lost packets) so old-term entries linger on minorities; one entry per append
 *   (appendBytesMax 1) lets an old-term entry reach a majority before the new leader's own entry.
 * - election-crash: voters crash and restart mid-election while vote requests are still in
 *   flight (long delays, duplicates): a node that forgets its vote votes twice.
 * - stale-candidate: partitions leave nodes behind, then let them campaign without pre-vote.
 */
export const profiles = {
  figure8: {
    nodeCount: 3, electionTicks: 4, heartbeatTicks: 3, preVote: false, checkQuorum: false,
    limits: { appendBytesMax: 1, inflightMessagesMax: 1 }, actionInterval: 4,
    leaderTargetProbability: 0.5, voterTargetProbability: 0, crashInReadyProbability: 0.9,
    weights: { ...quiet, propose: 30, crash: 8, "partition-one-way": 8, heal: 8 },
    downtimeMin: 5, downtimeMax: 40, network: { delayMin: 1, delayMax: 6, lossProbability: 0.1, duplicateProbability: 0 },
  },
  "election-crash": {
    nodeCount: 5, electionTicks: 4, preVote: false, checkQuorum: false, actionInterval: 5,
    leaderTargetProbability: 0.3, voterTargetProbability: 0.9, crashInReadyProbability: 0,
    weights: { ...quiet, propose: 10, crash: 20, heal: 2, "partition-symmetric": 2 },
    downtimeMin: 1, downtimeMax: 10, network: { delayMin: 2, delayMax: 25, lossProbability: 0, duplicateProbability: 0.2 },
  },
  "stale-candidate": {
    preVote: false, checkQuorum: false,
    weights: { ...baseWeights, "partition-symmetric": 8, "partition-one-way": 6, heal: 6, crash: 6 },
  },
} as const satisfies Record<string, ScenarioOverrides>;

export type ProfileName = keyof typeof profiles;
export const profileNames = Object.keys(profiles) as ProfileName[];

export function scenarioFromSeed(seed: number, overrides: ScenarioOverrides = {}): Scenario {
  const rng = new SimRng(deriveSeed(seed, "scenario"));
  const tickPeriod = 10;
  const electionTicks = rng.pick([4, 6, 10]);
  const base: Scenario = {
    seed,
    profile: "random",
    nodeCount: rng.pick([1, 3, 3, 3, 5, 5, 5]),
    electionTicks,
    heartbeatTicks: rng.pick([1, 1, 2]),
    preVote: rng.chance(0.5),
    checkQuorum: rng.chance(0.5),
    limits: pickLimits(rng),
    tickPeriod,
    network: pickNetwork(rng, tickPeriod),
    actionInterval: rng.pick([5, 10, 20, 40]),
    weights: pickWeights(rng),
    downtimeMin: tickPeriod,
    downtimeMax: rng.pick([3, 10, 30]) * electionTicks * tickPeriod,
    pauseMax: rng.pick([2, 5]) * electionTicks * tickPeriod,
    crashInReadyProbability: rng.pick([0.2, 0.5, 0.8]),
    leaderTargetProbability: rng.pick([0, 0.3, 0.7]),
    voterTargetProbability: rng.pick([0, 0, 0.5]),
    safetySteps: defaultSafetySteps,
    livenessTicks: 60 * electionTicks,
    bugs: {},
  };
  // A quarter of ordinary seeds run one of the bug-hunting profiles instead of a random mix.
  const roll = rng.int(4 * profileNames.length);
  const name: string = overrides.profile ?? profileNames[roll] ?? "random";
  const profile: ScenarioOverrides = name === "random" ? {} : { ...profiles[name as ProfileName], profile: name };
  return merge(merge(base, profile), overrides);
}

function merge(base: Scenario, overrides: ScenarioOverrides): Scenario {
  return {
    ...base,
    ...overrides,
    weights: { ...base.weights, ...overrides.weights },
    network: { ...base.network, ...overrides.network },
    limits: { ...base.limits, ...overrides.limits },
  };
}
