/**
 * @module One seeded run (TigerBeetle `vopr.zig`): a safety phase of `safetySteps` events (ticks,
 * deliveries, restarts and seed-chosen faults and client actions, every checker after each), then a
 * liveness phase: heal the network, restart every crashed node, stop all faults, and demand that a
 * leader is elected, every accepted proposal resolves (commits or is overwritten) and every member
 * applies a fresh probe write, with progress never stalling for `livenessTicks` and the whole phase
 * bounded. Any violation ends the run with the step it happened at; the same seed replays the same
 * run exactly.
 */
import { AssertionError } from "../../server/assert.ts";
import type { NodeId } from "../../server/raft/types.ts";
import { proposeAt, runAction } from "./actions.ts";
import { Violation, violated, type ViolationKind } from "./checkers.ts";
import type { Proposal } from "./client-ledger.ts";
import { Cluster } from "./cluster.ts";
import type { NetworkStats } from "./network.ts";
import { actionKinds, scenarioFromSeed, type ActionKind, type Scenario, type ScenarioOverrides } from "./scenario.ts";

export interface RunViolation {
  readonly kind: ViolationKind;
  readonly step: number;
  readonly message: string;
}

export interface RunResult {
  readonly seed: number;
  readonly scenario: Scenario;
  readonly steps: number;
  readonly livenessSteps: number;
  readonly actions: Readonly<Record<ActionKind, number>>;
  readonly crashes: number;
  readonly snapshotsInstalled: number;
  readonly proposals: { readonly accepted: number; readonly committed: number; readonly dropped: number };
  readonly readsServed: number;
  readonly network: NetworkStats;
  readonly violation: RunViolation | null;
}

/** Hard cap on liveness-phase events, whatever the simulated-time budget says. */
const livenessStepsMax = 200_000;
/** The liveness phase lasts at most this many no-progress windows in all. */
const livenessSpanMax = 8;

class Run {
  readonly cluster: Cluster;
  step = 0;
  livenessSteps = 0;
  readonly actions = Object.fromEntries(actionKinds.map((kind) => [kind, 0])) as Record<ActionKind, number>;
  private probe: Proposal | null = null;
  /** Liveness phase: when applied indexes or resolved proposals last grew, and their sum then. */
  private lastProgressAt = 0;
  private progress = 0;
  private inLiveness = false;
  private readonly weights: number[];

  constructor(
    readonly scenario: Scenario,
    trace: ((line: string) => void) | null,
  ) {
    this.cluster = new Cluster(scenario);
    this.cluster.trace = trace;
    this.weights = actionKinds.map((kind) => scenario.weights[kind]);
    this.scheduleAction();
  }

  safetyPhase(): void {
    const onAction = (): void => this.safetyAction();
    while (this.step < this.scenario.safetySteps) {
      this.step += 1;
      if (!this.cluster.step(onAction)) break;
    }
  }

  /**
   * Progress must never stall for `livenessTicks`, and the whole phase is capped at
   * `livenessSpanMax` times that (a slow but steady catch-up, e.g. one entry per append, is fine).
   */
  livenessPhase(): void {
    this.beginLiveness();
    const cluster = this.cluster;
    const window = this.scenario.livenessTicks * this.scenario.tickPeriod;
    const deadline = cluster.now + livenessSpanMax * window;
    const onAction = (): void => this.livenessAction();
    while (!this.livenessReached()) {
      if (cluster.now > this.lastProgressAt + window) {
        violated("liveness", `no progress for ${this.scenario.livenessTicks} ticks after healing: ${this.describe()}`);
      }
      if (cluster.now > deadline || this.livenessSteps >= livenessStepsMax) {
        violated("liveness", `not done ${livenessSpanMax * this.scenario.livenessTicks} ticks after healing: ${this.describe()}`);
      }
      this.step += 1;
      this.livenessSteps += 1;
      if (!cluster.step(onAction)) violated("liveness", "the event queue ran dry");
    }
    this.checkAcknowledged();
  }

  private scheduleAction(): void {
    const cluster = this.cluster;
    const interval = this.inLiveness ? this.scenario.tickPeriod : 1 + cluster.rng.int(2 * this.scenario.actionInterval);
    cluster.queue.push(cluster.now + interval, { kind: "action" });
  }

  private safetyAction(): void {
    this.scheduleAction();
    if (this.weights.every((w) => w <= 0)) return;
    const kind = actionKinds[this.cluster.rng.weighted(this.weights)] as ActionKind;
    const did = runAction(this.cluster, kind);
    if (did) this.actions[kind] += 1;
    this.cluster.trace?.(`  action ${kind}${did ? "" : " (nothing to do)"}`);
  }

  private beginLiveness(): void {
    const cluster = this.cluster;
    this.inLiveness = true;
    cluster.restartsScheduled = false;
    cluster.network.quiet(this.scenario.tickPeriod);
    this.lastProgressAt = cluster.now;
    for (const node of cluster.nodes.values()) {
      node.pausedUntil = 0;
      node.crashArmed = null;
      if (!node.alive) {
        node.start();
        node.observe();
      }
    }
  }

  /**
   * Keep a fresh write in flight at the current leader until every older proposal has resolved:
   * proposals accepted at indexes a later leader never reached resolve only once the log grows past
   * them, and the probe's own commit shows the healed cluster makes progress.
   */
  private livenessAction(): void {
    this.scheduleAction();
    this.noteProgress();
    const leader = this.cluster.leader();
    if (leader === null) return;
    const probe = this.probe;
    const stale = probe === null || probe.state === "dropped" || probe.term < leader.status.term;
    const more = probe?.state === "committed" && this.cluster.ledger.pendingCount > 0;
    if (!stale && !more) return;
    if (proposeAt(this.cluster, leader.node) === null) return;
    this.probe = this.cluster.ledger.latest;
  }

  private noteProgress(): void {
    const cluster = this.cluster;
    let progress = cluster.ledger.committed + cluster.ledger.dropped;
    for (const node of cluster.nodes.values()) progress += node.applied;
    if (progress > this.progress) {
      this.progress = progress;
      this.lastProgressAt = cluster.now;
    }
  }

  private livenessReached(): boolean {
    const cluster = this.cluster;
    const probe = this.probe;
    if (probe === null || probe.state !== "committed" || cluster.ledger.pendingCount > 0) return false;
    const leader = cluster.leader();
    if (leader === null) return false;
    // A leader that applied its own removal may keep serving (etcd's default): members still count.
    const { voters, learners } = leader.status.confState;
    for (const id of [...voters, ...learners]) {
      const node = cluster.nodes.get(id);
      if (node === undefined || node.applied < probe.index) return false;
    }
    return true;
  }

  /** Acknowledged writes are never lost: every member's state machine holds each one. */
  private checkAcknowledged(): void {
    const cluster = this.cluster;
    const leader = cluster.leader();
    if (leader === null) return;
    const members: NodeId[] = [...leader.status.confState.voters, ...leader.status.confState.learners];
    for (const proposal of cluster.ledger.acknowledged) {
      for (const id of members) {
        const sm = cluster.node(id).storage.sm;
        const code = sm.codes[proposal.index - 1];
        if (code === proposal.code) continue;
        violated(
          "acknowledged-lost",
          `${id} has ${code ?? "nothing"} at index ${proposal.index}, where acknowledged write ${proposal.code} committed`,
        );
      }
    }
  }

  describe(): string {
    const parts: string[] = [];
    for (const node of this.cluster.nodes.values()) {
      const status = node.raw?.status();
      if (status === undefined) parts.push(`${node.id}:down`);
      else parts.push(`${node.id}:${status.role}@${status.term} commit=${status.commit} applied=${status.applied} last=${status.lastIndex} voters=${status.confState.voters.join(",")} learners=${status.confState.learners.join(",")}`);
    }
    const ledger = this.cluster.ledger;
    parts.push(`pending proposals at [${ledger.pendingIndexes().join(",")}] probe=${this.probe?.index ?? "none"}:${this.probe?.state ?? ""}`);
    return parts.join("; ");
  }
}

function toViolation(error: unknown, step: number): RunViolation {
  if (error instanceof Violation) return { kind: error.kind, step, message: error.message };
  // An assertion inside the core (or the shell contract) is a finding too: report it with its origin.
  const name = error instanceof AssertionError ? "assertion" : "error";
  const message = error instanceof Error ? `${name}: ${error.message}\n${error.stack ?? ""}` : String(error);
  return { kind: "exception", step, message: `[exception] ${message}` };
}

export function runScenario(scenario: Scenario, trace: ((line: string) => void) | null = null): RunResult {
  let run: Run | null = null;
  let violation: RunViolation | null = null;
  try {
    run = new Run(scenario, trace);
    run.safetyPhase();
    run.livenessPhase();
  } catch (error) {
    violation = toViolation(error, run?.step ?? 0);
  }
  const cluster = run?.cluster;
  const ledger = cluster?.ledger;
  return {
    seed: scenario.seed,
    scenario,
    steps: run?.step ?? 0,
    livenessSteps: run?.livenessSteps ?? 0,
    actions: run?.actions ?? (Object.fromEntries(actionKinds.map((kind) => [kind, 0])) as Record<ActionKind, number>),
    crashes: cluster?.crashes ?? 0,
    snapshotsInstalled: cluster?.snapshotsInstalled ?? 0,
    proposals: { accepted: ledger?.accepted ?? 0, committed: ledger?.committed ?? 0, dropped: ledger?.dropped ?? 0 },
    readsServed: ledger?.readsServed ?? 0,
    network: cluster?.network.stats ?? { sent: 0, delivered: 0, lost: 0, cut: 0, duplicated: 0 },
    violation,
  };
}

export function runSeed(seed: number, overrides: ScenarioOverrides = {}, trace: ((line: string) => void) | null = null): RunResult {
  return runScenario(scenarioFromSeed(seed, overrides), trace);
}

export function formatViolation(result: RunResult): string {
  const v = result.violation;
  if (v === null) return `SEED=${result.seed} ok`;
  const s = result.scenario;
  const shape = `profile=${s.profile} nodes=${s.nodeCount} preVote=${s.preVote} checkQuorum=${s.checkQuorum} bugs=${JSON.stringify(s.bugs)}`;
  return `SEED=${result.seed} step=${v.step} ${v.message}\n  (${shape}; replay: npm run sim -- --seed ${result.seed})`;
}
