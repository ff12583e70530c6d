/**
 * @module The configuration API (admin only): the whole model as one YAML or JSON document, each
 * object kind by name (create, read, update, delete), deployments with history, and rollback.
 *
 * Every change is validated completely before it is proposed (400 listing every problem; nothing
 * changes). Edits of one object are read-modify-write of the draft: read after a linearizable
 * barrier, written with `ifDraftIndex`, so two concurrent edits cannot silently overwrite each
 * other (the loser gets 409 and retries on fresh data).
 */
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Group } from "../../node/group.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";
import type { ConfigOp } from "../../state/config-state.ts";
import { encodeCommand } from "../../state/command-codec.ts";
import type { ConfigModel, Problem } from "../../config/model/types.ts";
import { modelDocument, parseModel } from "../../config/model/parse-model.ts";
import { modelApiVersion } from "../../config/model/types.ts";
import { exportModel, importModelText } from "../../config/model/model-text.ts";
import { validateDeployment } from "../../config/model/resolve.ts";
import { groupErrorResponse, runningGroup } from "../group-errors.ts";
import { errorBody } from "../errors.ts";

export interface ConfigDeps {
  readonly group: () => Group | null;
  readonly state: ReplicatedState;
  readonly nowMs?: () => number;
}

/** URL segment → the model's array of named objects. */
const kinds = { policies: "policies", packages: "packages", aspects: "aspects", templates: "templates" } as const;
type Kind = keyof typeof kinds;

export function configRoutes(deps: ConfigDeps): Hono {
  const routes = new Hono();
  const group = () => runningGroup(deps.group);
  const config = () => deps.state.config;
  const now = deps.nowMs ?? (() => Date.now());

  routes.get("/api/v1/config", async (c) => {
    await barrier(c, group());
    const format = formatOf(c.req.query("format") ?? (c.req.header("accept")?.includes("yaml") ? "yaml" : "json"));
    return c.body(exportModel(config().draft, format), 200, { "content-type": format === "yaml" ? "application/yaml" : "application/json", "x-opsconn-draft-index": String(config().draftIndex) });
  });

  routes.put("/api/v1/config", async (c) => {
    const format = bodyFormat(c);
    const imported = importModelText(await c.req.text(), format);
    if (!imported.ok) return invalid(c, imported.problems);
    const ifMatch = c.req.header("if-match");
    if (ifMatch !== undefined && !/^\d{1,15}$/.test(ifMatch)) throw new HTTPException(400, { message: `if-match: must be a draft index (x-opsconn-draft-index of a GET), got '${ifMatch}'` });
    const op: ConfigOp = { op: "put-model", document: modelDocument(imported.model), ...(ifMatch === undefined ? {} : { ifDraftIndex: Number(ifMatch) }) };
    return propose(c, group(), op, (index) => c.json({ draftIndex: index }, 200));
  });

  routes.get("/api/v1/config/connected-server", async (c) => {
    await barrier(c, group());
    const server = config().draft.connectedServer;
    return server === null ? c.json(errorBody(404, "no connected server configured"), 404) : c.json(server);
  });

  routes.put("/api/v1/config/connected-server", async (c) => {
    const body = await jsonBody(c);
    return editDraft(c, group(), config(), (model) => ({ ...model, connectedServer: body as unknown as ConfigModel["connectedServer"] }), 200);
  });

  routes.get("/api/v1/config/deployments", async (c) => {
    await barrier(c, group());
    const deployments = config().deployments.map(({ model: _model, ...summary }) => summary);
    const reports = Object.fromEntries(config().nodeReports);
    return c.json({ current: config().current?.version ?? null, deployments, nodes: reports });
  });

  routes.get("/api/v1/config/deployments/:version", async (c) => {
    await barrier(c, group());
    const deployment = config().deployments.find((d) => d.version === Number(c.req.param("version")));
    return deployment === undefined ? c.json(errorBody(404, `no deployment version ${c.req.param("version")} in the kept history`), 404) : c.json(deployment);
  });

  routes.post("/api/v1/config/deployments", async (c) => {
    const body = (await jsonBody(c)) as { template?: unknown };
    if (typeof body.template !== "string") throw new HTTPException(400, { message: "template: required (the management template to deploy)" });
    const g = group();
    await barrier(c, g);
    const problems = validateDeployment(config().draft, body.template, g.members().map((m) => m.id));
    if (problems.length > 0) return invalid(c, problems);
    return propose(c, g, { op: "deploy", template: body.template, atMs: now(), ifDraftIndex: config().draftIndex, byteBudgets: true }, (_index, version) => c.json({ version, template: body.template }, 201), deps.state);
  });

  routes.post("/api/v1/config/rollback", async (c) => {
    const body = (await jsonBody(c)) as { version?: unknown };
    if (typeof body.version !== "number" || !Number.isSafeInteger(body.version)) throw new HTTPException(400, { message: "version: required (a deployed version number)" });
    const version = body.version;
    return propose(c, group(), { op: "rollback", version, atMs: now(), byteBudgets: true }, (_index, created) => c.json({ version: created, rollbackOf: version }, 201), deps.state);
  });

  routes.get("/api/v1/config/:kind", async (c) => {
    const kind = kindOf(c);
    await barrier(c, group());
    return c.json({ [kind]: config().draft[kinds[kind]] });
  });

  routes.get("/api/v1/config/:kind/:name", async (c) => {
    const kind = kindOf(c);
    await barrier(c, group());
    const found = (config().draft[kinds[kind]] as ReadonlyArray<{ name: string }>).find((o) => o.name === c.req.param("name"));
    return found === undefined ? c.json(errorBody(404, `no ${singular(kind)} '${c.req.param("name")}'`), 404) : c.json(found);
  });

  routes.post("/api/v1/config/:kind", async (c) => {
    const kind = kindOf(c);
    const body = (await jsonBody(c)) as { name?: unknown };
    if (typeof body.name !== "string") throw new HTTPException(400, { message: "name: required" });
    const name = body.name;
    return editDraft(c, group(), config(), (model) => {
      const list = model[kinds[kind]] as ReadonlyArray<{ name: string }>;
      if (list.some((o) => o.name === name)) throw new HTTPException(409, { message: `${singular(kind)} '${name}' already exists` });
      return { ...model, [kinds[kind]]: [...list, body] };
    }, 201);
  });

  routes.put("/api/v1/config/:kind/:name", async (c) => {
    const kind = kindOf(c);
    const name = c.req.param("name");
    const body = (await jsonBody(c)) as { name?: unknown };
    if (body.name !== undefined && body.name !== name) throw new HTTPException(400, { message: `name: '${String(body.name)}' does not match the URL ('${name}'); delete and create to rename` });
    return editDraft(c, group(), config(), (model) => {
      const list = model[kinds[kind]] as ReadonlyArray<{ name: string }>;
      if (!list.some((o) => o.name === name)) throw new HTTPException(404, { message: `no ${singular(kind)} '${name}'` });
      return { ...model, [kinds[kind]]: list.map((o) => (o.name === name ? { ...body, name } : o)) };
    }, 200);
  });

  routes.delete("/api/v1/config/:kind/:name", async (c) => {
    const kind = kindOf(c);
    const name = c.req.param("name");
    return editDraft(c, group(), config(), (model) => {
      const list = model[kinds[kind]] as ReadonlyArray<{ name: string }>;
      if (!list.some((o) => o.name === name)) throw new HTTPException(404, { message: `no ${singular(kind)} '${name}'` });
      return { ...model, [kinds[kind]]: list.filter((o) => o.name !== name) };
    }, 200);
  });
  return routes;
}

/** Reads after this see every write acknowledged before it (the draft may live on the leader only). */
async function barrier(c: Context, group: Group): Promise<void> {
  try {
    await group.readBarrier();
  } catch (error) {
    throw new HTTPException(503, { res: groupErrorResponse(c, error) });
  }
}

async function editDraft(c: Context, group: Group, config: ReplicatedState["config"], edit: (model: ConfigModel) => unknown, status: 200 | 201): Promise<Response> {
  await barrier(c, group);
  const draftIndex = config.draftIndex;
  const edited = edit(config.draft) as object;
  const parsed = parseModel({ apiVersion: modelApiVersion, ...edited });
  if (!parsed.ok) return invalid(c, parsed.problems);
  return propose(c, group, { op: "put-model", document: modelDocument(parsed.model), ifDraftIndex: draftIndex }, (index) => c.json({ draftIndex: index }, status));
}

async function propose(c: Context, group: Group, op: ConfigOp, done: (index: number, version: number | undefined) => Response, state?: ReplicatedState): Promise<Response> {
  try {
    const { index, result } = await group.propose(encodeCommand({ kind: "config", op }));
    if (result.ok) {
      if (state === undefined) return done(index, undefined);
      // The version is in this node's state once it has applied the entry (it may be a follower).
      await group.waitApplied(index);
      return done(index, state.config.deployments.find((d) => d.index === index)?.version);
    }
    const status = result.error.startsWith("conflict") ? 409 : result.error.startsWith("no deployment version") ? 404 : 400;
    return c.json(errorBody(status, result.error), status);
  } catch (error) {
    return groupErrorResponse(c, error);
  }
}

function invalid(c: Context, problems: readonly Problem[]): Response {
  return c.json(errorBody(400, `${problems.length} problem${problems.length === 1 ? "" : "s"} in the configuration; nothing was changed`, { problems }), 400);
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header("content-type") ?? "";
  if (!type.includes("json")) throw new HTTPException(415, { message: `content-type must be application/json (got '${type}')` });
  const body: unknown = await c.req.json().catch(() => undefined);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HTTPException(400, { message: "body: must be a JSON object" });
  return body as Record<string, unknown>;
}

function bodyFormat(c: Context): "yaml" | "json" {
  const type = c.req.header("content-type") ?? "";
  if (type.includes("json")) return "json";
  if (type.includes("yaml")) return "yaml";
  throw new HTTPException(415, { message: `content-type must be application/json or application/yaml (got '${type}')` });
}

function formatOf(value: string): "yaml" | "json" {
  if (value === "yaml" || value === "json") return value;
  throw new HTTPException(400, { message: `format: must be yaml or json (got '${value}')` });
}

function kindOf(c: Context): Kind {
  const kind = c.req.param("kind") ?? "";
  if (!(kind in kinds)) throw new HTTPException(404, { message: `no configuration kind '${kind}' (known: ${Object.keys(kinds).join(", ")}, connected-server, deployments)` });
  return kind as Kind;
}

function singular(kind: Kind): string {
  return { policies: "policy", packages: "package", aspects: "aspect", templates: "template" }[kind];
}
