import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../../server/assert.ts";
import { parseModel } from "../../../server/config/model/parse-model.ts";
import { resolveTemplate, validateDeployment } from "../../../server/config/model/resolve.ts";
import type { ConfigModel } from "../../../server/config/model/types.ts";

/* eslint-disable @typescript-eslint/no-explicit-any -- documents are built freely */
type Doc = any;

const listener = (name: string): Doc => ({ name, type: "event-listener", path: name, inputFormat: "xml" });

/**
 * Two templates: "full" reaches package "shared" through both of its aspects; "metrics-only"
 * reaches one package. Package "shared" lists its policies out of name order on purpose.
 */
function doc(): Doc {
  return {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "h1:1" }, { id: "n2", fqdn: "h2:1" }, { id: "n3", fqdn: "h3:1" }] },
    policies: [listener("a"), listener("b"), listener("c"), listener("d"), { ...listener("m"), type: "metric-listener" }],
    packages: [
      { name: "zeta", policies: ["d"], weight: 5 },
      { name: "shared", policies: ["c", "a"], components: ["events", "backsync"], syncItems: [{ type: "backsync-target", name: "t", url: "https://x/y" }] },
      { name: "alpha", policies: ["b"] },
      { name: "metrics", policies: ["m"], components: ["metrics"] },
    ],
    aspects: [
      { name: "one", ciType: "Running Software", packages: ["zeta", "shared"] },
      { name: "two", ciType: "Running Software", packages: ["shared", "alpha"] },
      { name: "three", ciType: "Running Software", packages: ["metrics"] },
    ],
    templates: [
      { name: "full", ciType: "Operations Connector System", aspects: ["one", "two"] },
      { name: "metrics-only", ciType: "Operations Connector System", aspects: ["three"] },
    ],
  };
}

function modelOf(input: unknown): ConfigModel {
  const result = parseModel(input);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.model;
}

describe("resolveTemplate", () => {
  test("the union of its aspects' packages, each once, sorted by name, with policies resolved in package order", () => {
    const model = modelOf(doc());
    const result = resolveTemplate(model, "full");
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.packages.map((p) => p.name)).toEqual(["alpha", "shared", "zeta"]);
    const shared = result.packages[1];
    expect(shared?.policies.map((p) => p.name)).toEqual(["c", "a"]);
    expect(shared?.policies[0]).toBe(model.policies.find((p) => p.name === "c") as never);
    expect(shared).toMatchObject({ weight: 1, components: ["events", "backsync"], syncItems: [{ type: "backsync-target", name: "t", url: "https://x/y" }] });
    expect(result.packages[2]?.weight).toBe(5);
  });

  const cases: Array<[string, string, string[]]> = [
    ["full", "full", ["alpha", "shared", "zeta"]],
    ["one aspect", "metrics-only", ["metrics"]],
  ];
  test.each(cases)("%s", (_name, template, packages) => {
    const result = resolveTemplate(modelOf(doc()), template);
    expect(result.ok && result.packages.map((p) => p.name)).toEqual(packages);
  });

  test("an unknown template is a problem naming the known ones", () => {
    expect(resolveTemplate(modelOf(doc()), "fulll")).toEqual({ ok: false, problems: [{ path: "templates", message: "no template named 'fulll' (known: full, metrics-only)" }] });
    const empty = modelOf({ apiVersion: "opsconn/v1", policies: [], packages: [], aspects: [], templates: [] });
    expect(resolveTemplate(empty, "x")).toEqual({ ok: false, problems: [{ path: "templates", message: "no template named 'x' (there are none)" }] });
  });

  test("a model with a dangling reference is a bug, not a problem", () => {
    const model = modelOf(doc());
    const broken: ConfigModel = { ...model, packages: model.packages.filter((p) => p.name !== "metrics") };
    expect(() => resolveTemplate(broken, "metrics-only")).toThrow(AssertionError);
  });
});

describe("validateDeployment", () => {
  const members = ["n1", "n2", "n3", "n4"];

  test("a configured group whose nodes are all members can deploy", () => {
    expect(validateDeployment(modelOf(doc()), "full", members)).toEqual([]);
  });

  const cases: Array<[string, (d: Doc) => void, readonly string[], Array<[string, string]>]> = [
    ["an unknown template", () => undefined, members, [["templates", "no template named 'nope'"]]],
    ["no connected server", (d) => void (d.connectedServer = null), members, [["connectedServer", "the connected server is not configured"]]],
    ["a node that is not a member", () => undefined, ["n1", "n3"], [["connectedServer.nodes[1]", "connected server 'ha': node 'n2' (h2:1) is not a current member of the group"]]],
    [
      "no members at all, and an unknown template, in document order",
      () => undefined,
      [],
      [
        ["connectedServer.nodes[0]", "node 'n1'"],
        ["connectedServer.nodes[1]", "node 'n2'"],
        ["connectedServer.nodes[2]", "node 'n3'"],
        ["templates", "no template named 'nope'"],
      ],
    ],
  ];
  test.each(cases)("%s", (name, mutate, memberIds, expected) => {
    const d = doc();
    mutate(d);
    const template = name.includes("unknown template") ? "nope" : "full";
    const problems = validateDeployment(modelOf(d), template, memberIds);
    expect(problems.map((p) => p.path)).toEqual(expected.map(([path]) => path));
    expected.forEach(([, fragment], i) => expect(problems[i]?.message).toContain(fragment));
  });

  test("a template that activates no package (possible only in a model built by hand)", () => {
    const model = modelOf(doc());
    const hollow: ConfigModel = { ...model, aspects: model.aspects.map((a) => (a.name === "three" ? { ...a, packages: [] } : a)) };
    expect(validateDeployment(hollow, "metrics-only", members)).toEqual([{ path: "templates[1]", message: "template 'metrics-only' activates no HA package" }]);
  });
});
