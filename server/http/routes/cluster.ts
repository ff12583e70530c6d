/**
 * @module Connected servers = membership: list, add and remove nodes of the group. Changes run on
 * the leader (they need its view of each follower's progress); any other node relays the request
 * to the leader's API, once: a relayed request that lands on a non-leader is a 503 to retry.
 */
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Group } from "../../node/group.ts";
import { isAddress } from "../../config/node-config.ts";
import { groupErrorResponse, runningGroup } from "../group-errors.ts";
import { errorBody } from "../errors.ts";

const relayedHeader = "x-opsconn-relayed";
const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** How to reach another node's API: plain HTTP, or HTTPS trusting `ca` (or the system's CAs). */
export interface PeerHttp {
  readonly scheme: "http" | "https";
  readonly ca: string | null;
}

export function clusterRoutes(getGroup: () => Group | null, peerHttp: PeerHttp): Hono {
  const routes = new Hono();
  const group = () => runningGroup(getGroup);

  routes.get("/api/v1/cluster/nodes", (c) => c.json({ nodes: group().members(), leader: group().leader()?.id ?? null }));

  routes.post("/api/v1/cluster/nodes", async (c) => {
    const body = (await c.req.json().catch(() => undefined)) as { id?: unknown; address?: unknown } | undefined;
    if (typeof body?.id !== "string" || !nodeIdPattern.test(body.id)) throw new HTTPException(400, { message: "id: must be 1-63 characters of letters, digits, '.', '_' or '-'" });
    if (!isAddress(body.address)) throw new HTTPException(400, { message: "address: must be host:port" });
    const { id, address } = body as { id: string; address: string };
    return onLeader(c, group(), peerHttp, JSON.stringify({ id, address }), async (g) => {
      await g.addNode(id, address);
      return c.json({ added: id, nodes: g.members() }, 201);
    });
  });

  routes.delete("/api/v1/cluster/nodes/:id", async (c) => {
    const id = c.req.param("id");
    const g = group();
    if (!g.members().some((m) => m.id === id)) return c.json(errorBody(404, `no node '${id}' in the group`), 404);
    return onLeader(c, g, peerHttp, null, async (leader) => {
      await leader.removeNode(id);
      return c.json({ removed: id, nodes: leader.members() });
    });
  });
  return routes;
}

async function onLeader(c: Context, group: Group, peerHttp: PeerHttp, body: string | null, run: (group: Group) => Promise<Response>): Promise<Response> {
  const leader = group.leader();
  try {
    if (leader?.self === true) return await run(group);
  } catch (error) {
    return groupErrorResponse(c, error);
  }
  if (leader === null || leader.address === null || c.req.header(relayedHeader) !== undefined) {
    return c.json(errorBody(503, "no leader reachable for a membership change; retry", { leader: leader?.id ?? null, retry: true }), 503);
  }
  const headers: Record<string, string> = { [relayedHeader]: "1", "content-type": "application/json" };
  const authorization = c.req.header("authorization");
  if (authorization !== undefined) headers["authorization"] = authorization;
  try {
    const relayed = await fetch(`${peerHttp.scheme}://${leader.address}${c.req.path}`, {
      method: c.req.method,
      headers,
      ...(body === null ? {} : { body }),
      ...(peerHttp.ca === null ? {} : { tls: { ca: peerHttp.ca } }),
    });
    return new Response(relayed.body, { status: relayed.status, headers: { "content-type": relayed.headers.get("content-type") ?? "application/json" } });
  } catch (error) {
    return c.json(errorBody(503, `leader ${leader.id} at ${leader.address} unreachable: ${(error as Error).message}`, { retry: true }), 503);
  }
}
