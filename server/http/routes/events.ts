/**
 * @module The event listener (OpsCx REST Web Service Listener): `POST /bsmc/rest/events/<path>`
 * on any node. The path picks the deployed HA package's event-listener policy; the body goes
 * through `ingest` (all or nothing); the events enter the package's replicated outbox, and the
 * answer (202, with the event ids) comes only once that is committed on a majority. An
 * Idempotency-Key header, or a source_event_id seen before, returns the earlier ids instead of
 * duplicates. Needs the ingest role when tokens are configured.
 */
import { Hono } from "hono";
import type { Group } from "../../node/group.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";
import { resolveTemplate } from "../../config/model/resolve.ts";
import type { Policy } from "../../config/model/types.ts";
import { ingest } from "../../connector/events/ingest.ts";
import { encodeOprEvents } from "../../connector/events/event-codec.ts";
import { AcceptQueue } from "../../connector/events/accept-queue.ts";
import { groupErrorResponse, runningGroup } from "../group-errors.ts";
import { errorBody } from "../errors.ts";

export interface EventRoutesDeps {
  readonly group: () => Group | null;
  readonly state: ReplicatedState;
  /** The node's queue, when it reports the queue in its status; otherwise the routes keep their own. */
  readonly acceptQueue?: AcceptQueue;
}

const prefix = "/bsmc/rest/events/";
const idempotencyKeyCharsMax = 256;

export function eventRoutes(deps: EventRoutesDeps): Hono {
  const routes = new Hono();
  const queue = deps.acceptQueue ?? new AcceptQueue({ group: deps.group, state: deps.state, nowMs: Date.now });
  routes.post(`${prefix}*`, async (c) => {
    const path = c.req.path.slice(prefix.length);
    const found = findEventListener(deps.state, path);
    if (found === null) return c.json(errorBody(404, `no deployed event listener policy on path '${path}'`), 404);
    const requestKey = c.req.header("idempotency-key") ?? null;
    if (requestKey !== null && (requestKey.length === 0 || requestKey.length > idempotencyKeyCharsMax)) return c.json(errorBody(400, `idempotency-key: 1 to ${idempotencyKeyCharsMax} characters`), 400);
    const result = ingest(found.policy, { contentType: c.req.header("content-type") ?? "", body: await c.req.text() }, { nowMs: Date.now() });
    if (!result.ok) return c.json(errorBody(result.status, result.error), result.status);
    if (result.events.length === 0) return c.json({ ids: [], duplicates: 0, suppressed: result.suppressed, ignored: result.ignored }, 202);
    runningGroup(deps.group);
    const events = encodeOprEvents(result.events);
    // A re-send is the same event again: same listener, same source id, same content. A changed
    // event under the same id (firing, then resolved) is new and must pass.
    const eventKeys = result.events.map((e, i) => {
      const sourceId = e.custom_attributes["source_event_id"];
      return sourceId ? `${found.policy.name}:${sourceId}:${Bun.hash(events[i]!).toString(36)}` : null;
    });
    try {
      const outcome = await queue.submit(found.packageName, { requestKey, eventKeys, events });
      if (outcome.ok) return c.json({ ids: outcome.ids, duplicates: outcome.duplicates, suppressed: result.suppressed, ignored: result.ignored }, 202);
      if ("notDeployed" in outcome) return c.json(errorBody(409, outcome.error), 409);
      return c.json(errorBody(503, outcome.error, { retry: true }), 503);
    } catch (error) {
      return groupErrorResponse(c, error);
    }
  });
  return routes;
}

/** Per deployment: listener path → policy and package (resolved once, not per request). */
const listenersByDeployment = new WeakMap<object, ReadonlyMap<string, { policy: Policy; packageName: string }>>();

/** The current deployment's event-listener policy on `path`, and the package it belongs to. */
function findEventListener(state: ReplicatedState, path: string): { policy: Policy; packageName: string } | null {
  const deployment = state.config.current;
  if (deployment === null) return null;
  let listeners = listenersByDeployment.get(deployment);
  if (listeners === undefined) {
    const byPath = new Map<string, { policy: Policy; packageName: string }>();
    const resolved = resolveTemplate(deployment.model, deployment.template);
    if (resolved.ok) for (const pkg of resolved.packages) for (const policy of pkg.policies) if (policy.type === "event-listener") byPath.set(policy.path, { policy, packageName: pkg.name });
    listenersByDeployment.set(deployment, (listeners = byPath));
  }
  return listeners.get(path) ?? null;
}
