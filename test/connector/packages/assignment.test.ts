/** The HA package assignment planner (server/connector/packages/assignment.ts). */
import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../../server/assert.ts";
import {
  applyChanges,
  loads,
  planAssignments,
  type Assignment,
  type AssignmentChange,
  type NodeView,
  type PackageSpec,
  type PlanInput,
} from "../../../server/connector/packages/assignment.ts";

const up = (...ids: string[]): NodeView[] => ids.map((id) => ({ id, eligible: true }));
const down = (...ids: string[]): NodeView[] => ids.map((id) => ({ id, eligible: false }));
const light = (count: number, prefix = "p"): PackageSpec[] =>
  Array.from({ length: count }, (_, i) => ({ name: `${prefix}${String(i).padStart(2, "0")}`, weight: 1 }));
const noLease = () => false;

function plan(overrides: Partial<PlanInput> & Pick<PlanInput, "packages" | "nodes">): AssignmentChange[] {
  return planAssignments({ current: new Map(), leaseHeld: noLease, rebalanceMovesMax: 1, ...overrides });
}

/** `current` with every listed package on `node` at `epoch`. */
function placed(entries: Record<string, readonly PackageSpec[]>, epoch = 1): Map<string, Assignment> {
  const current = new Map<string, Assignment>();
  for (const [node, specs] of Object.entries(entries)) for (const spec of specs) current.set(spec.name, { node, epoch });
  return current;
}

const spread = (map: ReadonlyMap<string, number>) => Math.max(...map.values()) - Math.min(...map.values());

describe("planAssignments: placement", () => {
  test("first assignment spreads packages over the nodes, loads within the largest weight", () => {
    const packages = [...light(7), { name: "big", weight: 4 }, { name: "mid", weight: 3 }, { name: "mid2", weight: 2 }];
    const nodes = up("a", "b", "c");
    const changes = plan({ packages, nodes });
    expect(changes.map((c) => c.package)).toEqual(packages.map((p) => p.name).sort());
    expect(changes.every((c) => c.epoch === 1 && c.reason === "assign" && c.node !== null)).toBe(true);
    const after = loads(packages, applyChanges(new Map(), changes), nodes);
    expect(spread(after)).toBeLessThanOrEqual(4);
    expect([...after.values()].reduce((a, b) => a + b)).toBe(16);
  });

  test("weights are respected: one heavy package balances several light ones", () => {
    const packages = [{ name: "heavy", weight: 6 }, ...light(6)];
    const changes = plan({ packages, nodes: up("a", "b") });
    const current = applyChanges(new Map(), changes);
    expect(current.get("heavy")?.node).toBe("a");
    for (const spec of light(6)) expect(current.get(spec.name)?.node).toBe("b");
    expect(loads(packages, current, up("a", "b"))).toEqual(new Map([["a", 6], ["b", 6]]));
  });

  test("sticky: planning again on the applied output changes nothing", () => {
    const packages = [...light(9), { name: "x", weight: 5 }, { name: "y", weight: 2 }];
    const nodes = up("a", "b", "c", "d");
    const current = applyChanges(new Map(), plan({ packages, nodes, rebalanceMovesMax: 5 }));
    expect(plan({ packages, nodes, current, rebalanceMovesMax: 5 })).toEqual([]);
    // Sticky even though a fresh spread would differ: a new node order does not move anything.
    expect(plan({ packages, nodes: [...nodes].reverse(), current, rebalanceMovesMax: 0 })).toEqual([]);
  });

  test("no eligible node: nothing is assigned", () => {
    expect(plan({ packages: light(3), nodes: down("a", "b") })).toEqual([]);
    expect(plan({ packages: light(3), nodes: [] })).toEqual([]);
  });

  test("a node not listed, or listed twice, and other bad inputs are bugs", () => {
    const bad: Array<Partial<PlanInput>> = [
      { packages: [{ name: "p", weight: 1 }, { name: "p", weight: 2 }] },
      { packages: [{ name: "p", weight: 0 }] },
      { packages: [{ name: "p", weight: 1.5 }] },
      { packages: [{ name: "p", weight: 1_000_001 }] },
      { nodes: [...up("a"), ...down("a")] },
      { current: new Map([["p", { node: "a", epoch: -1 }]]) },
      { current: new Map([["p", { node: "a", epoch: 0.5 }]]) },
      { rebalanceMovesMax: -1 },
    ];
    for (const overrides of bad) expect(() => plan({ packages: [], nodes: up("a"), ...overrides })).toThrow(AssertionError);
  });
});

describe("planAssignments: failover", () => {
  const packages = light(12);
  const byNode = { a: packages.slice(0, 4), b: packages.slice(4, 8), c: packages.slice(8) };

  test("holder out of contact with its lease possibly held: no change", () => {
    const current = placed(byNode);
    expect(plan({ packages, nodes: [...up("a", "b"), ...down("c")], current, leaseHeld: () => true })).toEqual([]);
  });

  test("lease lapsed: its packages move to the survivors, balanced, epoch + 1", () => {
    const current = placed(byNode, 3);
    for (const nodes of [[...up("a", "b"), ...down("c")], up("a", "b")]) { // ineligible or gone
      const changes = plan({ packages, nodes, current });
      expect(changes.map((c) => c.package)).toEqual(byNode.c.map((p) => p.name));
      expect(changes.every((c) => c.reason === "failover" && c.epoch === 4)).toBe(true);
      expect(loads(packages, applyChanges(current, changes), up("a", "b"))).toEqual(new Map([["a", 6], ["b", 6]]));
    }
  });

  test("lease lapsed but no eligible node: no change", () => {
    expect(plan({ packages, nodes: down("a", "b", "c"), current: placed(byNode) })).toEqual([]);
  });

  test("only the packages whose lease lapsed move", () => {
    const current = placed(byNode);
    const changes = plan({ packages, nodes: [...up("a", "b"), ...down("c")], current, leaseHeld: (name) => name !== "p09" });
    expect(changes).toEqual([{ package: "p09", node: "a", epoch: 2, reason: "failover" }]);
  });
});

describe("planAssignments: removal and re-adding", () => {
  test("a package no longer deployed is released, epoch + 1", () => {
    const current = new Map<string, Assignment>([["gone", { node: "a", epoch: 4 }], ["old", { node: null, epoch: 9 }], ["kept", { node: "a", epoch: 1 }]]);
    const changes = plan({ packages: [{ name: "kept", weight: 1 }], nodes: up("a"), current });
    expect(changes).toEqual([{ package: "gone", node: null, epoch: 5, reason: "removed" }]);
  });

  test("a re-added package continues its epoch, once the old lease has lapsed", () => {
    const current = new Map<string, Assignment>([["back", { node: null, epoch: 7 }]]);
    const packages = [{ name: "back", weight: 2 }];
    expect(plan({ packages, nodes: up("a"), current, leaseHeld: () => true })).toEqual([]);
    expect(plan({ packages, nodes: up("a"), current })).toEqual([{ package: "back", node: "a", epoch: 8, reason: "assign" }]);
  });
});

describe("planAssignments: rebalancing", () => {
  const packages = light(12);
  const nodes = up("a", "b", "c");

  test("a rejoining node receives work one release per call and loads converge", () => {
    let current = placed({ a: packages.slice(0, 6), b: packages.slice(6) });
    let lapsed = new Set<string>();
    let calls = 0;
    for (; calls < 30; calls++) {
      const released = [...current].filter(([, a]) => a.node === null).map(([name]) => name);
      const changes = plan({ packages, nodes, current, leaseHeld: (name) => !lapsed.has(name) });
      // Each released package waits one call (lease held), then is assigned next call.
      const assigns = changes.filter((c) => c.reason === "assign");
      expect(assigns.map((c) => c.package)).toEqual(released.filter((name) => lapsed.has(name)));
      expect(changes.filter((c) => c.reason === "rebalance").length).toBeLessThanOrEqual(1);
      if (released.length > 0 && assigns.length === 0) expect(changes).toEqual([]); // waiting: no new release
      lapsed = new Set(released);
      current = applyChanges(current, changes);
      if (changes.length === 0 && released.length === 0) break;
    }
    expect(loads(packages, current, nodes)).toEqual(new Map([["a", 4], ["b", 4], ["c", 4]]));
    expect(calls).toBeLessThanOrEqual(9); // 4 moves, two calls each, plus the final quiet call
  });

  test("the first release: from the most loaded node (ties by id) toward the least loaded, one at a time", () => {
    const current = placed({ a: packages.slice(0, 6), b: packages.slice(6) });
    expect(plan({ packages, nodes, current })).toEqual([{ package: "p00", node: null, epoch: 2, reason: "rebalance" }]);
    const more = plan({ packages, nodes, current, rebalanceMovesMax: 10 });
    // Counted as moved to c each time: a 6→4, b 6→4, c 0→4.
    expect(more.map((c) => c.package)).toEqual(["p00", "p01", "p06", "p07"]);
    expect(plan({ packages, nodes, current, rebalanceMovesMax: 0 })).toEqual([]);
  });

  test("a released package is not reassigned while its lease may be held, and nothing else moves meanwhile", () => {
    const current = placed({ a: packages.slice(0, 6), b: packages.slice(6) });
    current.set("p00", { node: null, epoch: 2 });
    expect(plan({ packages, nodes, current, leaseHeld: (name) => name === "p00", rebalanceMovesMax: 10 })).toEqual([]);
    const changes = plan({ packages, nodes, current, rebalanceMovesMax: 0 });
    expect(changes).toEqual([{ package: "p00", node: "c", epoch: 3, reason: "assign" }]);
  });

  test("only strict improvements: a package as heavy as the gap stays", () => {
    const current = placed({ a: [{ name: "h", weight: 5 }], b: [] });
    expect(plan({ packages: [{ name: "h", weight: 5 }], nodes: up("a", "b"), current, rebalanceMovesMax: 5 })).toEqual([]);
    const mixed = [{ name: "h", weight: 5 }, { name: "m", weight: 3 }, { name: "s", weight: 1 }];
    // a=9, b=0, gap 9: the largest weight below 9 is h.
    expect(plan({ packages: mixed, nodes: up("a", "b"), current: placed({ a: mixed }), rebalanceMovesMax: 5 }))
      .toEqual([{ package: "h", node: null, epoch: 2, reason: "rebalance" }]);
  });

  test("never releases from an ineligible holder; a waiting package blocks rebalancing", () => {
    const current = placed({ a: packages.slice(0, 8), b: packages.slice(8, 10), c: packages.slice(10) });
    const nodes2 = [...up("a", "b"), ...down("c")];
    expect(plan({ packages, nodes: nodes2, current, leaseHeld: () => true, rebalanceMovesMax: 5 })).toEqual([]);
  });
});

describe("applyChanges and loads", () => {
  test("applyChanges rejects an epoch that does not follow, or a package changed twice", () => {
    const current = new Map<string, Assignment>([["p", { node: "a", epoch: 2 }]]);
    expect(() => applyChanges(current, [{ package: "p", node: null, epoch: 2, reason: "removed" }])).toThrow(AssertionError);
    expect(() => applyChanges(current, [{ package: "q", node: "a", epoch: 2, reason: "assign" }])).toThrow(AssertionError);
    const twice: AssignmentChange[] = [{ package: "q", node: "a", epoch: 1, reason: "assign" }, { package: "q", node: "b", epoch: 1, reason: "assign" }];
    expect(() => applyChanges(current, twice)).toThrow(AssertionError);
    expect(applyChanges(current, [{ package: "p", node: null, epoch: 3, reason: "removed" }])).toEqual(new Map([["p", { node: null, epoch: 3 }]]));
    expect(current.get("p")).toEqual({ node: "a", epoch: 2 }); // pure
  });

  test("loads count deployed packages on listed nodes only", () => {
    const current = new Map<string, Assignment>([["p", { node: "a", epoch: 1 }], ["gone", { node: "a", epoch: 1 }], ["q", { node: "x", epoch: 1 }]]);
    const packages = [{ name: "p", weight: 3 }, { name: "q", weight: 2 }];
    expect(loads(packages, current, [...up("a"), ...down("b")])).toEqual(new Map([["a", 3], ["b", 0]]));
  });
});

// ---------------------------------------------------------------------------------------------
// Seeded property test: random scenarios, a lease model, invariants checked after every call.

/** mulberry32: tiny, deterministic, good enough to pick scenarios. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Scenario {
  readonly seed: number;
  readonly random: () => number;
  readonly int: (lo: number, hi: number) => number;
  readonly pool: readonly PackageSpec[];
  readonly nodeIds: readonly string[];
  readonly leaseRounds: number;
  readonly rebalanceMovesMax: number;
}

const scenariosCount = 3000;
const chaosRoundsMax = 15;
const calmRoundsMax = 50;

function newScenario(seed: number): Scenario {
  const random = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const heavy = random() < 0.2;
  const pool = Array.from({ length: int(0, 12) }, (_, i) => ({ name: `p${String(i).padStart(2, "0")}`, weight: heavy ? int(1, 1_000_000) : int(1, 5) }));
  const nodeIds = Array.from({ length: int(1, 5) }, (_, i) => `n${i}`);
  return { seed, random, int, pool, nodeIds, leaseRounds: int(1, 3), rebalanceMovesMax: int(0, 3) };
}

/** The world the leader sees: deployments, contact, and when each package's last lease lapses. */
interface World {
  deployed: Set<string>;
  eligible: Set<string>;
  current: Map<string, Assignment>;
  /** Package → first round at which its last holder's lease has surely lapsed. */
  readonly leaseLapsesAt: Map<string, number>;
}

function newWorld(s: Scenario): World {
  const current = new Map<string, Assignment>();
  const leaseLapsesAt = new Map<string, number>();
  const holders = [...s.nodeIds, "gone", null];
  for (const spec of s.pool) {
    if (s.random() < 0.5) continue;
    const node = holders[s.int(0, holders.length - 1)] ?? null;
    current.set(spec.name, { node, epoch: node === null ? s.int(0, 5) : s.int(1, 5) });
    leaseLapsesAt.set(spec.name, s.int(0, s.leaseRounds));
  }
  return {
    deployed: new Set(s.pool.filter(() => s.random() < 0.8).map((spec) => spec.name)),
    eligible: new Set(s.nodeIds.filter(() => s.random() < 0.7)),
    current,
    leaseLapsesAt,
  };
}

/** One call of the planner at `round`, its changes applied, every per-call invariant checked. */
function step(s: Scenario, world: World, round: number): AssignmentChange[] {
  const check = (condition: boolean, message: string) => {
    if (!condition) throw new Error(`SEED=${s.seed} round ${round}: ${message}`);
  };
  // A holder in contact keeps renewing its lease; one out of contact, or released, stops renewing.
  for (const [name, assignment] of world.current) {
    if (assignment.node !== null && world.eligible.has(assignment.node)) world.leaseLapsesAt.set(name, round + s.leaseRounds);
  }
  const leaseHeld = (name: string) => (world.leaseLapsesAt.get(name) ?? 0) > round;
  const packages = s.pool.filter((spec) => world.deployed.has(spec.name));
  const nodes = s.nodeIds.map((id) => ({ id, eligible: world.eligible.has(id) }));
  const input = { packages, nodes, current: world.current, leaseHeld, rebalanceMovesMax: s.rebalanceMovesMax };
  const changes = planAssignments(input);
  const mirrored = planAssignments({ ...input, packages: [...packages].reverse(), nodes: [...nodes].reverse() });
  check(JSON.stringify(mirrored) === JSON.stringify(changes), "the plan does not depend on input order");
  for (const change of changes) {
    const before = world.current.get(change.package);
    check(change.epoch === (before?.epoch ?? 0) + 1, `${change.package}: epoch +1 per change`);
    if (change.node === null) continue;
    check(world.eligible.has(change.node), `${change.package}: assigned to an eligible node`);
    // Two nodes never act on one package: the new holder starts only after the old lease lapsed.
    check(!leaseHeld(change.package), `${change.package}: given to ${change.node} while the last lease may be held`);
  }
  const next = applyChanges(world.current, changes);
  for (const [name, before] of world.current) {
    const after = next.get(name);
    check(after !== undefined && after.epoch >= before.epoch, `${name}: epochs never decrease`);
  }
  world.current = next;
  return changes;
}

/** Nothing left to do: every deployed package runs on an eligible node, or there is none. */
function settled(world: World): boolean {
  if (world.eligible.size === 0) return true;
  for (const name of world.deployed) {
    const node = world.current.get(name)?.node ?? null;
    if (node === null || !world.eligible.has(node)) return false;
  }
  return true;
}

function runScenario(seed: number): number {
  const s = newScenario(seed);
  const world = newWorld(s);
  let round = 0;
  const chaosRounds = s.int(0, chaosRoundsMax);
  for (; round < chaosRounds; round++) {
    if (s.random() < 0.3 && s.nodeIds.length > 0) toggle(world.eligible, s.nodeIds[s.int(0, s.nodeIds.length - 1)] ?? "");
    if (s.random() < 0.3 && s.pool.length > 0) toggle(world.deployed, s.pool[s.int(0, s.pool.length - 1)]?.name ?? "");
    step(s, world, round);
  }
  // Calm: contact and deployments frozen, leases lapse; the plan must reach a fixed point.
  for (let calm = 0; calm < calmRoundsMax; calm++, round++) {
    const changes = step(s, world, round);
    if (changes.length > 0 || !settled(world)) continue;
    if (step(s, world, round + 1).length !== 0) throw new Error(`SEED=${seed}: a stable state changed again`);
    checkBalanced(s, world);
    return calm;
  }
  throw new Error(`SEED=${seed}: no fixed point after ${calmRoundsMax} calm rounds`);
}

/**
 * At a fixed point with rebalancing on, no package on the most loaded node (ties: smallest id) would
 * narrow its gap to the least loaded one. Rule 5 looks at that one node only, so another node tied
 * at the top may still hold a light package: that is the rule, not checked here.
 */
function checkBalanced(s: Scenario, world: World): void {
  if (s.rebalanceMovesMax === 0 || world.eligible.size < 2) return;
  const packages = s.pool.filter((spec) => world.deployed.has(spec.name));
  const eligibleNodes = s.nodeIds.filter((id) => world.eligible.has(id)).map((id) => ({ id, eligible: true }));
  const byNode = loads(packages, world.current, eligibleNodes);
  const gap = spread(byNode);
  const high = [...byNode].filter(([, value]) => value === Math.max(...byNode.values())).map(([id]) => id).sort()[0];
  for (const spec of packages) {
    const node = world.current.get(spec.name)?.node ?? null;
    if (node === high && spec.weight < gap) throw new Error(`SEED=${s.seed}: ${spec.name} on ${high} could still narrow the gap ${gap}`);
  }
}

function toggle(set: Set<string>, item: string): void {
  if (!set.delete(item)) set.add(item);
}

describe("planAssignments: seeded property", () => {
  test(`${scenariosCount} random scenarios reach a safe, balanced fixed point`, () => {
    let slowest = 0;
    for (let seed = 1; seed <= scenariosCount; seed++) slowest = Math.max(slowest, runScenario(seed));
    // Failover waits at most leaseRounds; each rebalance batch costs at most leaseRounds more.
    expect(slowest).toBeLessThan(calmRoundsMax);
  });
});
