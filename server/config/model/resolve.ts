/**
 * @module What deploying a management template means: the HA packages it activates (through its
 * aspects), each with its policies resolved, and whether the group can take it now. Pure. The
 * model is one `parseModel` accepted, so a dangling reference here is a bug, not a user error.
 */
import { assert } from "../../assert.ts";
import { configLimits } from "../../constants.ts";
import type { ConfigModel, Problem, ResolvedPackage, ResolveResult } from "./types.ts";

/**
 * The packages a deployment of `templateName` activates: the union of its aspects' packages (a
 * package reached through two aspects is there once), sorted by name.
 */
export function resolveTemplate(model: ConfigModel, templateName: string): ResolveResult {
  const template = model.templates.find((t) => t.name === templateName);
  if (template === undefined) return { ok: false, problems: [unknownTemplate(model, templateName)] };
  const aspects = new Map(model.aspects.map((a) => [a.name, a]));
  const packages = new Map(model.packages.map((p) => [p.name, p]));
  const policies = new Map(model.policies.map((p) => [p.name, p]));
  const activated = new Set<string>();
  for (const aspectName of template.aspects) {
    const aspect = aspects.get(aspectName);
    assert(aspect !== undefined, () => `template '${template.name}' refers to a missing aspect '${aspectName}'`);
    for (const packageName of aspect.packages) activated.add(packageName);
  }
  const resolved = [...activated].sort(compareCodeUnits).map((name): ResolvedPackage => {
    const pkg = packages.get(name);
    assert(pkg !== undefined, () => `aspect refers to a missing package '${name}'`);
    return {
      name: pkg.name,
      weight: pkg.weight,
      components: pkg.components,
      syncItems: pkg.syncItems,
      forward: pkg.forward ?? { type: "omi" },
      policies: pkg.policies.map((policyName) => {
        const policy = policies.get(policyName);
        assert(policy !== undefined, () => `package '${name}' refers to a missing policy '${policyName}'`);
        return policy;
      }),
    };
  });
  assert(resolved.length <= configLimits.packagesMax, "a template activates at most every package");
  return { ok: true, packages: resolved };
}

/**
 * Whether `templateName` can be deployed now, to a group whose current members are `memberIds`.
 * The model itself is assumed valid (parseModel accepted it). Empty: deployable.
 */
export function validateDeployment(model: ConfigModel, templateName: string, memberIds: readonly string[]): Problem[] {
  const problems: Problem[] = [];
  const server = model.connectedServer;
  // Document order: connectedServer comes before templates.
  if (server === null) problems.push({ path: "connectedServer", message: "the connected server is not configured: deploy needs its nodes" });
  else {
    const members = new Set(memberIds);
    server.nodes.forEach((node, i) => {
      const message = `connected server '${server.name}': node '${node.id}' (${node.fqdn}) is not a current member of the group`;
      if (!members.has(node.id)) problems.push({ path: `connectedServer.nodes[${i}]`, message });
    });
  }
  const resolved = resolveTemplate(model, templateName);
  if (!resolved.ok) problems.push(...resolved.problems);
  else if (resolved.packages.length === 0) {
    const index = model.templates.findIndex((t) => t.name === templateName);
    problems.push({ path: `templates[${index}]`, message: `template '${templateName}' activates no HA package` });
  }
  return problems;
}

function unknownTemplate(model: ConfigModel, templateName: string): Problem {
  const shown = 10;
  const names = model.templates.slice(0, shown).map((t) => t.name);
  const more = model.templates.length > shown ? `, … (${model.templates.length} in all)` : "";
  const known = names.length === 0 ? "there are none" : `known: ${names.join(", ")}${more}`;
  return { path: "templates", message: `no template named '${templateName.slice(0, 64)}' (${known})` };
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
