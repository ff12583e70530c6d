/** The replicated configuration (server/state/config-state.ts) and its durable form. */
import { afterAll, describe, expect, test } from "bun:test";
import { ConfigState, type ConfigOp } from "../../server/state/config-state.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { encodeCommand } from "../../server/state/command-codec.ts";
import type { SqlStatement } from "../../server/storage/sql-writer.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";

afterAll(cleanupAll);

const model = {
  apiVersion: "opsconn/v1",
  connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "a.example.com:8080" }, { id: "n2", fqdn: "b.example.com:8080" }] },
  policies: [{ name: "pull-a", type: "event-pull", url: "http://127.0.0.1:9/a", intervalSec: 30, inputFormat: "json" }],
  packages: [{ name: "pkg-a", policies: ["pull-a"] }],
  aspects: [{ name: "asp", ciType: "Running Software", packages: ["pkg-a"] }],
  templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
};
const members = ["n1", "n2"];

function applied(ops: ConfigOp[]): { state: ConfigState; results: ReturnType<ConfigState["apply"]>[] } {
  const state = new ConfigState();
  const results = ops.map((op, i) => state.apply(op, i + 1, members));
  return { state, results };
}

describe("ConfigState", () => {
  test("an invalid model changes nothing and says why; a valid one becomes the draft", () => {
    const { state, results } = applied([{ op: "put-model", document: { ...model, packages: [{ name: "pkg-a", policies: ["missing"] }] } }, { op: "put-model", document: model }]);
    expect(results[0]!.ok).toBe(false);
    expect(!results[0]!.ok && results[0]!.error).toContain("missing");
    expect(results[1]).toEqual({ ok: true });
    expect(state.draft.packages.map((p) => p.name)).toEqual(["pkg-a"]);
    expect(state.draftIndex).toBe(2);
  });

  test("a read-modify-write based on an older draft is a conflict", () => {
    const { results } = applied([
      { op: "put-model", document: model },
      { op: "put-model", document: model, ifDraftIndex: 1 },
      { op: "put-model", document: model, ifDraftIndex: 1 },
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, true, false]);
    expect(!results[2]!.ok && results[2]!.error).toStartWith("conflict");
  });

  test("deploy validates against the members; rollback deploys an old version again as a new one", () => {
    const { state, results } = applied([
      { op: "deploy", template: "tpl", atMs: 1 },
      { op: "put-model", document: model },
      { op: "deploy", template: "nope", atMs: 2 },
      { op: "deploy", template: "tpl", atMs: 3 },
      { op: "put-model", document: { ...model, packages: [{ name: "pkg-b", policies: ["pull-a"] }], aspects: [{ name: "asp", ciType: "Running Software", packages: ["pkg-b"] }] } },
      { op: "deploy", template: "tpl", atMs: 4 },
      { op: "rollback", version: 1, atMs: 5 },
      { op: "rollback", version: 99, atMs: 6 },
    ]);
    expect(results.map((r) => r.ok)).toEqual([false, true, false, true, true, true, true, false]);
    expect(state.deployments.map((d) => [d.version, d.kind, d.rollbackOf, d.packages])).toEqual([
      [1, "deploy", null, ["pkg-a"]],
      [2, "deploy", null, ["pkg-b"]],
      [3, "rollback", 1, ["pkg-a"]],
    ]);
    // The draft keeps the user's latest edits.
    expect(state.draft.packages.map((p) => p.name)).toEqual(["pkg-b"]);
    const notMembers = new ConfigState();
    notMembers.apply({ op: "put-model", document: model }, 1, ["n1"]);
    const refused = notMembers.apply({ op: "deploy", template: "tpl", atMs: 1 }, 2, ["n1"]);
    expect(refused.ok).toBe(false);
  });

  test("assignments move only with the next epoch, all or nothing (fencing)", () => {
    const { state, results } = applied([
      { op: "assign", basisIndex: 0, changes: [{ package: "a", node: "n1", epoch: 1 }, { package: "b", node: "n2", epoch: 1 }] },
      { op: "assign", basisIndex: 0, changes: [{ package: "a", node: "n2", epoch: 2 }, { package: "b", node: "n1", epoch: 1 }] },
      { op: "assign", basisIndex: 0, changes: [{ package: "a", node: null, epoch: 2 }] },
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(Object.fromEntries(state.assignments)).toEqual({ a: { node: null, epoch: 2 }, b: { node: "n2", epoch: 1 } });
  });

  test("a plan may not move a package whose holder renewed after the plan's basis", () => {
    const { state, results } = applied([
      { op: "assign", basisIndex: 0, changes: [{ package: "a", node: "n1", epoch: 1 }] },
      { op: "renew", node: "n1", runningVersion: 1, packages: [{ name: "a", epoch: 1 }] },
      // Planned at basis 1: the leader's book had not seen the renewal at 2.
      { op: "assign", basisIndex: 1, changes: [{ package: "a", node: "n2", epoch: 2 }] },
      { op: "assign", basisIndex: 3, changes: [{ package: "a", node: "n2", epoch: 2 }] },
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
    expect(!results[2]!.ok && results[2]!.error).toContain("renewed by n1 at 2");
    expect(state.assignments.get("a")).toEqual({ node: "n2", epoch: 2 });
  });

  test("deploy with ifDraftIndex deploys only the draft that was validated", () => {
    const { state, results } = applied([
      { op: "put-model", document: model },
      { op: "put-model", document: model },
      { op: "deploy", template: "tpl", atMs: 1, ifDraftIndex: 1 },
      { op: "deploy", template: "tpl", atMs: 1, ifDraftIndex: 2 },
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
    expect(state.deployments.length).toBe(1);
  });

  test("a renewal counts only for packages the node holds at the epoch it names", () => {
    const { state } = applied([
      { op: "assign", basisIndex: 0, changes: [{ package: "a", node: "n1", epoch: 1 }, { package: "b", node: "n2", epoch: 1 }] },
      { op: "renew", node: "n1", runningVersion: 4, packages: [{ name: "a", epoch: 1 }, { name: "b", epoch: 1 }, { name: "c", epoch: 1 }] },
      { op: "assign", basisIndex: 2, changes: [{ package: "a", node: "n2", epoch: 2 }] },
      { op: "renew", node: "n1", runningVersion: 4, packages: [{ name: "a", epoch: 1 }] },
    ]);
    expect(state.takeRenewals()).toEqual([
      { node: "n1", packages: ["a"], index: 2 },
      { node: "n1", packages: [], index: 4 },
    ]);
    expect(state.takeRenewals()).toEqual([]);
    expect(state.nodeReports.get("n1")).toEqual({ runningVersion: 4, index: 4 });
  });

  test("malformed ops fail the same way everywhere instead of throwing", () => {
    const state = new ConfigState();
    const bad = [{ op: "assign", basisIndex: 0, changes: [{ package: 7 }] }, { op: "renew", node: "n1" }, { op: "deploy" }, { op: "rollback", version: "x" }] as unknown as ConfigOp[];
    bad.forEach((op, i) => expect(state.apply(op, i + 1, members).ok).toBe(false));
  });
});

describe("ConfigState durable form", () => {
  test("rows written by flush load back to the same state, and a snapshot carries it to another node", async () => {
    const open = await openDatabase(tempDir());
    const state = new ReplicatedState();
    await state.load(open.client, { applied: 0, compactedThrough: 0 });
    const ops: ConfigOp[] = [
      { op: "put-model", document: model },
      { op: "deploy", template: "tpl", atMs: 10 },
      { op: "assign", basisIndex: 0, changes: [{ package: "pkg-a", node: "n1", epoch: 1 }] },
      { op: "renew", node: "n1", runningVersion: 1, packages: [{ name: "pkg-a", epoch: 1 }] },
    ];
    state.apply([1, 2].map((index) => ({ index, term: 1, type: "normal" as const, data: encodeCommand({ kind: "member-set", nodeId: `n${index}`, address: `h:${index}` }) })));
    const results = state.apply(ops.map((op, i) => ({ index: i + 3, term: 1, type: "normal" as const, data: encodeCommand({ kind: "config", op }) })));
    expect(results.results.every((r) => r.ok)).toBe(true);
    const statements: SqlStatement[] = [];
    state.flush(statements, { compactedThrough: 0 });
    await open.writer.commit(statements, { durable: true });

    const again = new ReplicatedState();
    await again.load(open.client, { applied: 6, compactedThrough: 0 });
    expect(again.config.toRows()).toEqual(state.config.toRows());
    expect(again.config.current?.version).toBe(1);

    const follower = new ReplicatedState();
    follower.restore(state.snapshot(), 6);
    expect(follower.config.toRows()).toEqual(state.config.toRows());
    open.close();
  });
});
