/**
 * The package runtime's lease handling with its collaborators faked (group, driver, transport) and
 * time injected: a holder grants itself a lease only for what the renewal confirmed, stops when the
 * lease lapses, and a leader plans locally, once its term's first entry is applied, with a basis.
 */
import { describe, expect, test } from "bun:test";
import { PackageRuntime, type PackageTiming } from "../../../server/connector/packages/package-runtime.ts";
import { ReplicatedState } from "../../../server/state/replicated-state.ts";
import { decodeCommand, encodeCommand } from "../../../server/state/command-codec.ts";
import type { ConfigOp } from "../../../server/state/config-state.ts";
import { Logger } from "../../../server/log/logger.ts";

const timing: PackageTiming = { tickMs: 50, renewEveryMs: 150, planEveryMs: 100, failureWindowMs: 500, rebalanceMovesMax: 1, leaseMs: 500, marginMs: 100 };
const log = new Logger({ node: "n1", level: "error", pretty: false, sink: { write: () => {} } });
const model = {
  apiVersion: "opsconn/v1",
  connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "a:1" }, { id: "n2", fqdn: "b:1" }] },
  // Polls at most hourly and only to a closed port: the runner starting is what is observed.
  policies: [{ name: "pull-a", type: "event-pull", url: "http://127.0.0.1:9/a", intervalSec: 3600, inputFormat: "json" }],
  packages: [{ name: "p", policies: ["pull-a"] }],
  aspects: [{ name: "asp", ciType: "Running Software", packages: ["p"] }],
  templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
};

/** A node's state with the given config ops applied after the two member records. */
function stateWith(ops: ConfigOp[]): { state: ReplicatedState; append: (op: ConfigOp) => number } {
  const state = new ReplicatedState();
  let index = 0;
  const entry = (data: Uint8Array) => ({ index: ++index, term: 1, type: "normal" as const, data });
  state.apply([entry(encodeCommand({ kind: "member-set", nodeId: "n1", address: "a:1" })), entry(encodeCommand({ kind: "member-set", nodeId: "n2", address: "b:1" }))]);
  const append = (op: ConfigOp) => {
    state.apply([entry(encodeCommand({ kind: "config", op }))]);
    return index;
  };
  for (const op of ops) append(op);
  return { state, append };
}

const deployed: ConfigOp[] = [
  { op: "put-model", document: model },
  { op: "deploy", template: "tpl", atMs: 1 },
  { op: "assign", basisIndex: 0, changes: [{ package: "p", node: "n1", epoch: 1 }] },
];

function runtimeFor(options: { state: ReplicatedState; group: object; driver?: object; clock: { now: number } }) {
  const runtime = new PackageRuntime({
    nodeId: "n1",
    group: options.group as never,
    driver: (options.driver ?? { knownLeader: "n2", status: () => ({ lastIndex: 0 }) }) as never,
    transport: { stats: () => new Map() } as never,
    state: options.state,
    log,
    timing,
    nowMs: () => options.clock.now,
  });
  const tick = () => (runtime as unknown as { tick(): void }).tick();
  return { runtime, tick };
}

describe("PackageRuntime", () => {
  test("a renewal confirmed by the leader starts the package; without renewals it stops when the lease lapses", async () => {
    const { state } = stateWith(deployed);
    const clock = { now: 10_000 };
    let renewals = 0;
    let failing = false;
    const group = {
      propose: async (data: Uint8Array) => {
        renewals++;
        if (failing) throw new Error("no leader");
        const command = decodeCommand(data);
        expect(command.kind === "config" && command.op.op).toBe("renew");
        return { index: state.applied, result: { index: state.applied, ok: true } };
      },
      waitApplied: async () => {},
    };
    const { runtime, tick } = runtimeFor({ state, group, clock });
    tick();
    await Bun.sleep(1);
    clock.now += 50;
    tick();
    expect(runtime.status().packages).toEqual([{ name: "p", node: "n1", epoch: 1, leaseLeftMs: 450, activeHere: true, scope: "ha" }]);
    expect(runtime.mayAct("p", 1)).toBe(true);
    failing = true;
    for (let i = 0; i < 10; i++) {
      clock.now += 50;
      tick();
      await Bun.sleep(1);
    }
    expect(renewals).toBeGreaterThan(2);
    expect(runtime.mayAct("p", 1)).toBe(false);
    expect(runtime.status().packages[0]!.activeHere).toBe(false);
    runtime.stop();
  });

  test("a holder whose state lags takes no lease for a package that already moved (it reads its state at the renewal's index)", async () => {
    // Restarted from disk, n1 still sees itself holding p at epoch 1; the group moved p to n2 at 2.
    const { state, append } = stateWith(deployed);
    const clock = { now: 10_000 };
    const group = {
      propose: async () => ({ index: 99, result: { index: 99, ok: true } }),
      // Catching up to the renewal's index brings in the move.
      waitApplied: async () => void append({ op: "assign", basisIndex: 10, changes: [{ package: "p", node: "n2", epoch: 2 }] }),
    };
    const { runtime, tick } = runtimeFor({ state, group, clock });
    tick();
    await Bun.sleep(1);
    clock.now += 50;
    tick();
    expect(runtime.mayAct("p", 1)).toBe(false);
    expect(runtime.status().packages.map((p) => p.activeHere)).toEqual([false]);
    runtime.stop();
  });

  test("a leader plans through its own driver, with a basis, only once its term's first entry is applied", async () => {
    const { state } = stateWith([{ op: "put-model", document: model }, { op: "deploy", template: "tpl", atMs: 1 }]);
    const clock = { now: 10_000 };
    const planned: ConfigOp[] = [];
    let lastIndex = state.applied + 1; // the new term's no-op, not applied yet
    const driver = {
      knownLeader: "n1",
      status: () => ({ lastIndex }),
      propose: async (data: Uint8Array) => {
        const command = decodeCommand(data);
        if (command.kind === "config") planned.push(command.op);
        return { index: 0, ok: true };
      },
    };
    const group = { propose: async () => { throw new Error("plans must not go through the group (retries, forwarding)"); }, waitApplied: async () => {} };
    const { runtime, tick } = runtimeFor({ state, group, driver, clock });
    (runtime as unknown as { book: { assumeAllHeld(n: number): void } }).book.assumeAllHeld(0);
    tick();
    await Bun.sleep(1);
    expect(planned).toEqual([]);
    lastIndex = state.applied; // the no-op is applied
    (runtime as unknown as { leading: boolean }).leading = false; // re-enter leadership with the index applied
    clock.now += 200;
    tick();
    await Bun.sleep(1);
    expect(planned).toEqual([{ op: "assign", basisIndex: state.applied, changes: [{ package: "p", node: "n1", epoch: 1 }] }]);
    runtime.stop();
  });
});
