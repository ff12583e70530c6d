/**
 * @module Which node runs each HA package: a pure function of the replicated assignments, the
 * deployed packages and the Raft leader's view of which nodes are in contact and which leases may
 * still be held. The leader proposes the returned changes; every node applies them from the log.
 *
 * Safety comes from leases plus fencing epochs: a package never goes to a new node while its last
 * holder's lease may still be valid, and every change of holder (to "nobody" too) bumps the epoch,
 * so a stale holder's actions carry an old token and can be refused. A voluntary move is therefore
 * two plans apart: release (holder null), then, once the old lease has lapsed, assign.
 *
 * Placement is greedy onto the least-loaded eligible node, heaviest package first (the classic
 * LPT order: a fresh spread then never leaves a package worth rebalancing), and sticky: a package on
 * an eligible node stays there unless rebalancing strictly narrows the gap between the most and the
 * least loaded node. That strict improvement lowers the sum of squared loads, so moves terminate.
 * Pure: no I/O, no clock, no randomness; ties go by node id, then package name (string order).
 */
import { assert } from "../../assert.ts";

/**
 * Largest package weight. Local rather than in constants.ts because it only bounds this planner's
 * arithmetic: 1e6 × any realistic package count stays far inside exact integer range.
 */
export const packageWeightMax = 1_000_000;

export interface PackageSpec {
  readonly name: string;
  /** Integer in 1..packageWeightMax: the share of a node's capacity the package uses. */
  readonly weight: number;
}

export interface NodeView {
  readonly id: string;
  /** A member of the connected server and in contact with the leader: may be given work. */
  readonly eligible: boolean;
}

export interface Assignment {
  readonly node: string | null;
  /** Fencing token, non-negative integer: +1 on every change of holder. */
  readonly epoch: number;
}

export type ChangeReason = "assign" | "failover" | "rebalance" | "removed";

export interface AssignmentChange {
  readonly package: string;
  readonly node: string | null;
  readonly epoch: number;
  readonly reason: ChangeReason;
}

export interface PlanInput {
  /** The deployed packages (names unique). */
  readonly packages: readonly PackageSpec[];
  /** Ids unique. */
  readonly nodes: readonly NodeView[];
  /** Every package ever assigned, deployed or not: epochs keep counting across remove + re-add. */
  readonly current: ReadonlyMap<string, Assignment>;
  /** May the package's last holder still hold a lease? */
  readonly leaseHeld: (packageName: string) => boolean;
  /** Voluntary releases per call: work returns to a rejoining node gradually. */
  readonly rebalanceMovesMax: number;
}

/** The planner's scratch state for one call. */
interface Plan {
  readonly input: PlanInput;
  readonly eligible: ReadonlySet<string>;
  /** Deployed packages, heaviest first, then by name: the order placement and rebalancing scan. */
  readonly ordered: readonly PackageSpec[];
  /** Deployed package → holder after the decisions made so far in this call. */
  readonly holders: Map<string, string | null>;
  /**
   * Eligible node → load after the decisions so far. A rebalance release counts here as already
   * moved to its target, though its holder is null: that is what the next move must see.
   */
  readonly loads: Map<string, number>;
  readonly changes: Map<string, AssignmentChange>;
}

export function planAssignments(input: PlanInput): AssignmentChange[] {
  checkInput(input);
  const plan = newPlan(input);
  planRemovals(plan);
  // Rule 3 before rule 4: work that was running is restored before new work is placed.
  for (const spec of plan.ordered) {
    const holder = plan.holders.get(spec.name) ?? null;
    if (holder === null || plan.eligible.has(holder)) continue;
    if (input.leaseHeld(spec.name)) continue; // the old holder may still be acting: wait
    const target = leastLoaded(plan.loads, null);
    if (target !== null) decide(plan, { spec, node: target, reason: "failover" });
  }
  for (const spec of plan.ordered) {
    if ((plan.holders.get(spec.name) ?? null) !== null) continue;
    if (input.leaseHeld(spec.name)) continue; // released or removed recently: wait for the lapse
    const target = leastLoaded(plan.loads, null);
    if (target !== null) decide(plan, { spec, node: target, reason: "assign" });
  }
  // Rebalancing while something waits would count loads that are about to change, and would stack
  // a voluntary release on top of work that is not running anywhere yet.
  if (!anyWaiting(plan)) rebalance(plan);
  const changes = [...plan.changes.values()].sort((a, b) => compareStrings(a.package, b.package));
  checkOutput(plan, changes);
  return changes;
}

function newPlan(input: PlanInput): Plan {
  const eligible = new Set(input.nodes.filter((node) => node.eligible).map((node) => node.id));
  const ordered = [...input.packages].sort((a, b) => b.weight - a.weight || compareStrings(a.name, b.name));
  const holders = new Map<string, string | null>();
  const loads = new Map<string, number>();
  for (const id of eligible) loads.set(id, 0);
  for (const spec of ordered) {
    const holder = input.current.get(spec.name)?.node ?? null;
    holders.set(spec.name, holder);
    if (holder !== null && eligible.has(holder)) loads.set(holder, (loads.get(holder) ?? 0) + spec.weight);
  }
  return { input, eligible, ordered, holders, loads, changes: new Map() };
}

/** Rule 1: a package no longer deployed is released, so its holder stops and its epoch moves on. */
function planRemovals(plan: Plan): void {
  for (const [name, assignment] of plan.input.current) {
    if (assignment.node === null || plan.holders.has(name)) continue;
    plan.changes.set(name, { package: name, node: null, epoch: assignment.epoch + 1, reason: "removed" });
  }
}

/** Records one change of holder and keeps the loads in step. */
function decide(plan: Plan, decision: { readonly spec: PackageSpec; readonly node: string | null; readonly reason: ChangeReason }): void {
  const { spec, node, reason } = decision;
  assert(!plan.changes.has(spec.name), () => `package ${spec.name} changes at most once per plan`);
  const before = plan.holders.get(spec.name) ?? null;
  assert(before !== node, () => `a change of ${spec.name} must change its holder`);
  if (before !== null && plan.eligible.has(before)) plan.loads.set(before, load(plan, before) - spec.weight);
  if (node !== null) plan.loads.set(node, load(plan, node) + spec.weight);
  plan.holders.set(spec.name, node);
  const epoch = (plan.input.current.get(spec.name)?.epoch ?? 0) + 1;
  plan.changes.set(spec.name, { package: spec.name, node, epoch, reason });
}

function anyWaiting(plan: Plan): boolean {
  for (const holder of plan.holders.values()) if (holder === null || !plan.eligible.has(holder)) return true;
  return false;
}

/** Rule 5: release packages from the most to the least loaded node while that narrows the gap. */
function rebalance(plan: Plan): void {
  // Each release is a distinct package, so the package count bounds the loop too.
  const movesMax = Math.min(plan.input.rebalanceMovesMax, plan.ordered.length);
  for (let move = 0; move < movesMax; move++) {
    const high = mostLoaded(plan.loads);
    const low = high === null ? null : leastLoaded(plan.loads, high);
    if (high === null || low === null) return;
    const gap = load(plan, high) - load(plan, low);
    assert(gap >= 0, "the most loaded node carries at least the least loaded one's load");
    // `ordered` is heaviest first, then by name: the first fit is the largest weight below the gap.
    const spec = plan.ordered.find((candidate) =>
      plan.holders.get(candidate.name) === high && !plan.changes.has(candidate.name) && candidate.weight < gap);
    if (spec === undefined) return;
    decide(plan, { spec, node: null, reason: "rebalance" });
    plan.loads.set(low, load(plan, low) + spec.weight);
  }
}

function load(plan: Plan, node: string): number {
  const value = plan.loads.get(node);
  assert(value !== undefined, () => `node ${node} is eligible, so it has a load`);
  return value;
}

/** Min by (load, id), skipping `except`; null when no node qualifies. */
function leastLoaded(loads: ReadonlyMap<string, number>, except: string | null): string | null {
  let best: string | null = null;
  let bestLoad = Infinity;
  for (const [id, value] of loads) {
    if (id === except) continue;
    if (value < bestLoad || (value === bestLoad && best !== null && compareStrings(id, best) < 0)) {
      best = id;
      bestLoad = value;
    }
  }
  return best;
}

/** Max load, ties to the smallest id; null when there is no node. */
function mostLoaded(loads: ReadonlyMap<string, number>): string | null {
  let best: string | null = null;
  let bestLoad = -Infinity;
  for (const [id, value] of loads) {
    if (value > bestLoad || (value === bestLoad && best !== null && compareStrings(id, best) < 0)) {
      best = id;
      bestLoad = value;
    }
  }
  return best;
}

/** Code-unit order, as the spec's "string order": stable across locales, unlike localeCompare. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkInput(input: PlanInput): void {
  assert(Number.isSafeInteger(input.rebalanceMovesMax) && input.rebalanceMovesMax >= 0, "rebalanceMovesMax is an integer >= 0");
  const names = new Set<string>();
  for (const spec of input.packages) {
    assert(!names.has(spec.name), () => `package ${spec.name} is deployed once`);
    names.add(spec.name);
    assert(Number.isInteger(spec.weight) && spec.weight >= 1 && spec.weight <= packageWeightMax,
      () => `package ${spec.name} weight ${spec.weight} is an integer in 1..${packageWeightMax}`);
  }
  const ids = new Set<string>();
  for (const node of input.nodes) {
    assert(!ids.has(node.id), () => `node ${node.id} is listed once`);
    ids.add(node.id);
  }
  for (const [name, assignment] of input.current) {
    assert(Number.isSafeInteger(assignment.epoch) && assignment.epoch >= 0 && assignment.epoch < Number.MAX_SAFE_INTEGER,
      () => `package ${name} epoch ${assignment.epoch} is a non-negative integer with room to grow`);
  }
}

/** The safety argument in one place: fenced epochs, eligible targets, no direct move off a live holder. */
function checkOutput(plan: Plan, changes: readonly AssignmentChange[]): void {
  let previous: string | null = null;
  for (const change of changes) {
    assert(previous === null || compareStrings(previous, change.package) < 0, "changes are sorted by package, each once");
    previous = change.package;
    const before = plan.input.current.get(change.package);
    assert(change.epoch === (before?.epoch ?? 0) + 1, () => `package ${change.package} epoch moves by exactly one`);
    assert(change.node !== (before?.node ?? null), () => `a change of ${change.package} changes its holder`);
    if (change.node === null) continue;
    assert(plan.eligible.has(change.node), () => `package ${change.package} goes to eligible node ${change.node}`);
    const from = before?.node ?? null;
    assert(from === null || !plan.eligible.has(from), () => `package ${change.package} never moves directly off a live holder`);
  }
}

/** The next replicated state: `current` with `changes` applied (each package at most once). */
export function applyChanges(current: ReadonlyMap<string, Assignment>, changes: readonly AssignmentChange[]): Map<string, Assignment> {
  const next = new Map(current);
  const seen = new Set<string>();
  for (const change of changes) {
    assert(!seen.has(change.package), () => `package ${change.package} changes at most once per plan`);
    seen.add(change.package);
    const before = current.get(change.package);
    assert(change.epoch === (before?.epoch ?? 0) + 1, () => `package ${change.package} epoch ${change.epoch} follows ${before?.epoch ?? 0}`);
    next.set(change.package, { node: change.node, epoch: change.epoch });
  }
  return next;
}

/**
 * Load of every listed node (eligible or not): the weights of the deployed packages `current`
 * places on it. Holders not in `nodes` and packages no longer deployed count nowhere.
 */
export function loads(packages: readonly PackageSpec[], current: ReadonlyMap<string, Assignment>, nodes: readonly NodeView[]): Map<string, number> {
  const result = new Map<string, number>(nodes.map((node) => [node.id, 0]));
  for (const spec of packages) {
    const holder = current.get(spec.name)?.node ?? null;
    const value = holder === null ? undefined : result.get(holder);
    if (holder !== null && value !== undefined) result.set(holder, value + spec.weight);
  }
  assert(result.size === nodes.length, "node ids are unique");
  return result;
}
