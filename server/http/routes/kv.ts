/**
 * @module The replicated key-value API (tests, benchmarks, and later configuration). Writes are
 * accepted on any node and answered after commit on a majority and apply on the leader; reads are
 * linearizable through ReadIndex unless `?stale=true` (a stale read on a follower may briefly miss
 * a write it just forwarded).
 */
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Group } from "../../node/group.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";
import { encodeCommand, type KvItem } from "../../state/command-codec.ts";
import { kvLimits } from "../../constants.ts";
import { groupErrorResponse, runningGroup } from "../group-errors.ts";
import { errorBody } from "../errors.ts";

export interface KvDeps {
  readonly group: () => Group | null;
  readonly state: ReplicatedState;
}

const prefix = "/api/v1/kv/";
const utf8 = new TextEncoder();

export function kvRoutes(deps: KvDeps): Hono {
  const routes = new Hono();
  const group = () => runningGroup(deps.group);

  routes.put(`${prefix}*`, async (c) => {
    const key = keyOf(c);
    const value = new Uint8Array(await c.req.arrayBuffer());
    if (value.length > kvLimits.valueBytesMax) return c.json(errorBody(413, `value exceeds ${kvLimits.valueBytesMax} bytes`), 413);
    return write(c, group(), encodeCommand({ kind: "kv-put", key, value }), {});
  });

  routes.post("/api/v1/kv", async (c) => {
    const items = parseBatch(await c.req.json().catch(() => undefined));
    return write(c, group(), encodeCommand({ kind: "kv-put-batch", items }), { count: items.length });
  });

  routes.delete(`${prefix}*`, async (c) => write(c, group(), encodeCommand({ kind: "kv-delete", key: keyOf(c) }), {}));

  routes.get(`${prefix}*`, async (c) => {
    const key = keyOf(c);
    if (c.req.query("stale") !== "true") {
      try {
        await group().readBarrier();
      } catch (error) {
        return groupErrorResponse(c, error);
      }
    }
    const record = deps.state.kv.get(key);
    if (record === undefined) return c.json(errorBody(404, `no key '${key}'`), 404);
    return c.body(record.value as Uint8Array<ArrayBuffer>, 200, { "content-type": "application/octet-stream", "x-opsconn-mod-index": String(record.modIndex) });
  });
  return routes;
}

async function write(c: Context, group: Group, command: Uint8Array, extra: Record<string, number>): Promise<Response> {
  try {
    const applied = await group.propose(command);
    if (!applied.result.ok) return c.json(errorBody(400, applied.result.error), 400);
    return c.json({ index: applied.index, ...extra });
  } catch (error) {
    return groupErrorResponse(c, error);
  }
}

function keyOf(c: Context): string {
  let key: string;
  try {
    key = decodeURIComponent(c.req.path.slice(prefix.length));
  } catch {
    throw new HTTPException(400, { message: "key: not valid percent-encoding" });
  }
  const bytes = utf8.encode(key).length;
  if (bytes === 0 || bytes > kvLimits.keyBytesMax) throw new HTTPException(400, { message: `key: must be 1 to ${kvLimits.keyBytesMax} bytes` });
  return key;
}

function parseBatch(body: unknown): KvItem[] {
  const items = (body as { items?: unknown } | undefined)?.items;
  if (!Array.isArray(items)) throw new HTTPException(400, { message: 'body: expected JSON { "items": [ { "key", "value" } ] }' });
  if (items.length === 0 || items.length > kvLimits.batchItemsMax) throw new HTTPException(400, { message: `items: must hold 1 to ${kvLimits.batchItemsMax} entries` });
  return items.map((item: unknown, i) => {
    const { key, value } = (item ?? {}) as { key?: unknown; value?: unknown };
    // A UTF-16 unit is at most 3 UTF-8 bytes: only long keys need encoding to be measured.
    if (typeof key !== "string" || key.length === 0 || (key.length * 3 > kvLimits.keyBytesMax && utf8.encode(key).length > kvLimits.keyBytesMax)) {
      throw new HTTPException(400, { message: `items[${i}].key: must be a string of 1 to ${kvLimits.keyBytesMax} bytes` });
    }
    if (typeof value !== "string") throw new HTTPException(400, { message: `items[${i}].value: must be a string` });
    const bytes = utf8.encode(value);
    if (bytes.length > kvLimits.valueBytesMax) throw new HTTPException(413, { message: `items[${i}].value: exceeds ${kvLimits.valueBytesMax} bytes` });
    return { key, value: bytes };
  });
}
