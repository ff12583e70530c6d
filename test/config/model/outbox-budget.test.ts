/** A package's outbox disk budget in the model: `packages[].outboxBytesMax` (parse-model.ts, config-state.ts). */
import { describe, expect, test } from "bun:test";
import { parseModel } from "../../../server/config/model/parse-model.ts";
import { exportModel, importModelText } from "../../../server/config/model/model-text.ts";
import { ConfigState } from "../../../server/state/config-state.ts";
import { outboxLimits } from "../../../server/constants.ts";

const doc = (pkg: Record<string, unknown>) => ({
  apiVersion: "opsconn/v1",
  connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "a:1" }] },
  policies: [{ name: "in", type: "event-listener", path: "x", inputFormat: "json" }, { name: "in2", type: "event-listener", path: "y", inputFormat: "json" }],
  packages: [{ name: "p", policies: ["in"], ...pkg }, { name: "q", policies: ["in2"] }],
  aspects: [{ name: "a", ciType: "Running Software", packages: ["p", "q"] }],
  templates: [{ name: "t", ciType: "Operations Connector System", aspects: ["a"] }],
});

describe("packages[].outboxBytesMax", () => {
  test.each([
    ["below the minimum", outboxLimits.bytesPerPackageMin - 1],
    ["above the maximum", outboxLimits.bytesPerPackageMax + 1],
    ["not an integer", 1_048_576.5],
    ["a string", "1GB"],
  ])("refuses %s, naming the field", (_, value) => {
    const result = parseModel(doc({ outboxBytesMax: value }));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems.map((p) => p.path)).toEqual(["packages[0].outboxBytesMax"]);
  });

  test("a set budget round-trips through export; an absent one stays absent", () => {
    const parsed = parseModel(doc({ outboxBytesMax: 64 * 1024 * 1024 }));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    for (const format of ["yaml", "json"] as const) {
      const text = exportModel(parsed.model, format);
      expect(text).toContain("outboxBytesMax");
      const again = importModelText(text, format);
      expect(again.ok && exportModel(again.model, format)).toBe(text);
    }
    const plain = parseModel(doc({}));
    expect(plain.ok && exportModel(plain.model, "json")).not.toContain("outboxBytesMax");
  });

  test("the deployment gives the state machine each package's budget (the default where none is set)", () => {
    const state = new ConfigState();
    expect(state.apply({ op: "put-model", document: doc({ outboxBytesMax: 8 * 1024 * 1024 }) }, 1, ["n1"]).ok).toBe(true);
    expect(state.apply({ op: "deploy", template: "t", atMs: 1, byteBudgets: true }, 2, ["n1"]).ok).toBe(true);
    expect([...state.outboxBudgets]).toEqual([["p", 8 * 1024 * 1024], ["q", outboxLimits.bytesPerPackageDefault]]);
    // A deploy op of a build before byte budgets, applied again after an upgrade, keeps the old rule.
    expect(state.apply({ op: "deploy", template: "t", atMs: 2 }, 3, ["n1"]).ok).toBe(true);
    expect([...state.outboxBudgets]).toEqual([["p", Infinity], ["q", Infinity]]);
  });
});
