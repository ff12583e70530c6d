/**
 * @module Test-only fault switches, mounted only when the node runs with --test-faults: cut this
 * node off from chosen peers (a network partition, both directions) and heal it again. Used by the
 * multi-process tests; never enabled in production configs.
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Transport } from "../../transport/transport.ts";

export function testFaultRoutes(transport: Transport): Hono {
  const routes = new Hono();
  routes.post("/api/v1/test/partition", async (c) => {
    const body = (await c.req.json().catch(() => undefined)) as { peers?: unknown } | undefined;
    const peers = body?.peers;
    if (!Array.isArray(peers) || !peers.every((p) => typeof p === "string")) throw new HTTPException(400, { message: "peers: must be a list of node ids ([] heals)" });
    transport.setBlocked(peers);
    return c.json({ blocked: peers });
  });
  return routes;
}
