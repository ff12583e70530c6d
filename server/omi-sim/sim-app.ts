/**
 * @module The OMi receiver simulator's HTTP face: the subset of OMi's event web service opsconn
 * uses, plus controls for demos and tests.
 *
 * - `POST /opr-web/rest/9.10/event_list`: one `<event>` or an `<event_list>` (XML, OMi's namespace
 *   optional), or the same as JSON (`{ "event": {…} }`, `{ "event_list": [...] }` or an array).
 *   Answers 200 with the event ids (a merged duplicate keeps its id).
 * - `GET /opr-web/rest/9.10/event_list[?format=json][&after=SEQ&limit=N]`: every event, XML by
 *   default; or a page of at most N (up to 10,000) after omi-SEQ, so a poller need not list them all.
 * - `POST /omi-sim/faults {"mode": "ok" | "fail" | "slow" | "down", "delayMs"?}`: fail answers 500,
 *   slow delays each answer, down answers 503 and closes the connection.
 * - `POST /omi-sim/events/<id>/change {state?, severity?, assigned_user?, annotation?}`: an operator's
 *   change, recorded for back-sync; `GET /omi-sim/changes?after=SEQ` lists them.
 * - `GET /omi-sim/stats`: counts for tests (deliveries, events delivered, stored, merged as duplicates).
 * - `GET /omi-sim/deliveries?after=SEQ&limit=N&body=true`: the raw deliveries in order (at most
 *   1,000 per page; each body as received only with body=true), to see what was sent twice.
 */
import { Hono, type Context } from "hono";
import { requestBodyLimit } from "../http/middleware/body-limit.ts";
import { writeOmiEventList } from "../connector/events/omi-xml.ts";
import { formatOf } from "./delivery-body.ts";
import type { SimChange, SimStore } from "./sim-store.ts";
import { errorBody } from "../http/errors.ts";
import { httpLimits } from "../constants.ts";

export type FaultMode = "ok" | "fail" | "slow" | "down";

const eventListPath = "/opr-web/rest/9.10/event_list";
const slowDelayMsDefault = 2_000;
/** Events listed per page when a page is asked for. */
const eventsPageMax = 10_000;
/** Deliveries listed per page: bodies run to megabytes each. */
const deliveriesPageMax = 1_000;
const changeFields = new Set(["state", "severity", "assigned_user", "annotation"]);

export function createSimApp(store: SimStore, options: { readonly nowMs?: () => number } = {}): Hono {
  const app = new Hono();
  const now = () => new Date((options.nowMs ?? Date.now)()).toISOString();
  let fault: { mode: FaultMode; delayMs: number } = { mode: "ok", delayMs: 0 };

  app.use("*", requestBodyLimit({ maxSize: httpLimits.bodyBytesMax, onError: (c) => c.json(errorBody(413, `request body exceeds ${httpLimits.bodyBytesMax} bytes`), 413) }));

  /** What the faults do to the event web service (the controls stay reachable). */
  const faulted = async (c: Context): Promise<Response | null> => {
    if (fault.mode === "down") return c.json(errorBody(503, "OMi is down (simulated)"), 503, { connection: "close" });
    if (fault.mode === "fail") return c.json(errorBody(500, "OMi failed (simulated)"), 500);
    if (fault.mode === "slow") await Bun.sleep(fault.delayMs);
    return null;
  };

  app.post(eventListPath, async (c) => {
    const failure = await faulted(c);
    if (failure !== null) return failure;
    const delivered = await store.deliver(await c.req.text(), formatOf(c.req.header("content-type") ?? ""), now());
    if (!delivered.ok) return c.json(errorBody(400, delivered.error), 400);
    return c.json({ ids: delivered.ids }, 200);
  });

  app.get(eventListPath, async (c) => {
    const failure = await faulted(c);
    if (failure !== null) return failure;
    const paged = c.req.query("after") !== undefined || c.req.query("limit") !== undefined;
    const after = Number(c.req.query("after") ?? 0);
    const limit = Number(c.req.query("limit") ?? eventsPageMax);
    if (!Number.isSafeInteger(after) || after < 0) return c.json(errorBody(400, "after: must be a non-negative integer (the seq of an id omi-SEQ)"), 400);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > eventsPageMax) return c.json(errorBody(400, `limit: must be an integer from 1 to ${eventsPageMax}`), 400);
    const events = await store.events(paged ? { afterSeq: after, limit } : undefined);
    if (c.req.query("format") === "json") return c.json({ event_list: events });
    return c.body(writeOmiEventList(events), 200, { "content-type": "application/xml" });
  });

  app.post("/omi-sim/faults", async (c) => {
    const body = (await c.req.json().catch(() => null)) as { mode?: unknown; delayMs?: unknown } | null;
    const mode = body?.mode;
    if (mode !== "ok" && mode !== "fail" && mode !== "slow" && mode !== "down") return c.json(errorBody(400, "mode: must be ok, fail, slow or down"), 400);
    const delayMs = typeof body?.delayMs === "number" && body.delayMs >= 0 && body.delayMs <= 60_000 ? body.delayMs : slowDelayMsDefault;
    fault = { mode, delayMs };
    return c.json(fault);
  });

  app.post("/omi-sim/events/:id/change", async (c) => {
    const change = (await c.req.json().catch(() => null)) as Record<string, unknown> | null;
    if (change === null || typeof change !== "object" || Array.isArray(change)) return c.json(errorBody(400, "body: must be a JSON object"), 400);
    const unknown = Object.keys(change).filter((k) => !changeFields.has(k));
    if (unknown.length > 0) return c.json(errorBody(400, `unknown change field ${unknown[0]} (known: ${[...changeFields].join(", ")})`), 400);
    if (Object.values(change).some((v) => typeof v !== "string")) return c.json(errorBody(400, "change values must be strings"), 400);
    const updated = await store.change(c.req.param("id"), change as SimChange, now());
    return updated === null ? c.json(errorBody(404, `no event '${c.req.param("id")}'`), 404) : c.json(updated);
  });

  app.get("/omi-sim/changes", async (c) => c.json({ changes: await store.changes(Number(c.req.query("after") ?? 0) || 0) }));
  app.get("/omi-sim/deliveries", async (c) => {
    const after = Number(c.req.query("after") ?? 0);
    const limit = Number(c.req.query("limit") ?? deliveriesPageMax);
    if (!Number.isSafeInteger(after) || after < 0) return c.json(errorBody(400, "after: must be a non-negative integer"), 400);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > deliveriesPageMax) return c.json(errorBody(400, `limit: must be an integer from 1 to ${deliveriesPageMax}`), 400);
    return c.json({ deliveries: await store.deliveries(after, { limit, withBody: c.req.query("body") === "true" }) });
  });
  app.get("/omi-sim/stats", async (c) => c.json({ ...store.stats(), fault: fault.mode }));
  app.get("/omi-sim/events/:id", async (c) => {
    const event = await store.event(c.req.param("id"));
    return event === null ? c.json(errorBody(404, `no event '${c.req.param("id")}'`), 404) : c.json(event);
  });
  app.notFound((c) => c.json(errorBody(404, `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((error, c) => {
    // A request still in flight while the simulator stops: OMi going away, which senders retry.
    if (store.isClosed) return c.json(errorBody(503, "the OMi simulator is stopping"), 503, { connection: "close" });
    console.error(`omi-sim: ${c.req.method} ${c.req.path} failed: ${(error as Error).message}`);
    return c.json(errorBody(500, `the OMi simulator failed: ${(error as Error).message}`), 500);
  });
  return app;
}
