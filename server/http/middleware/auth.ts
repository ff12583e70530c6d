/**
 * @module API tokens with roles, from the node config (`apiTokens`). With no tokens configured the
 * API is open (a single-user lab; the node logs a warning at start). With tokens, every route but
 * /healthz and the peer link (which authenticates peers itself) needs `Authorization: Bearer`:
 * - admin: everything, and only admin reads or changes configuration or membership;
 * - ingest: sends data (writes to the key-value API, later events, metrics, topology) and reads status;
 * - read: GET requests outside configuration.
 * Unknown or missing token: 401; a known token without the role: 403. Tokens are compared in
 * constant time.
 */
import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "node:crypto";
import { errorBody } from "../errors.ts";
import { PEER_PATH } from "../../transport/peer-link.ts";

export type ApiRole = "admin" | "ingest" | "read";

export interface ApiToken {
  readonly token: string;
  readonly role: ApiRole;
}

const open = new Set(["/healthz", PEER_PATH]);

export function authorize(tokens: readonly ApiToken[]): MiddlewareHandler {
  const encoded = tokens.map((t) => ({ bytes: Buffer.from(t.token), role: t.role }));
  return async (c, next) => {
    if (encoded.length === 0 || open.has(c.req.path)) return next();
    const header = c.req.header("authorization") ?? "";
    const presented = header.startsWith("Bearer ") ? Buffer.from(header.slice("Bearer ".length).trim()) : null;
    const role = presented === null ? null : roleOf(encoded, presented);
    if (role === null) {
      c.header("www-authenticate", 'Bearer realm="opsconn"');
      return c.json(errorBody(401, presented === null ? "authorization: a Bearer token is required" : "authorization: unknown token"), 401);
    }
    const needed = requiredRole(c.req.method, c.req.path);
    if (!allows(role, needed)) return c.json(errorBody(403, `this token has role '${role}'; ${c.req.method} ${c.req.path} needs '${needed}'`), 403);
    return next();
  };
}

function roleOf(tokens: ReadonlyArray<{ bytes: Buffer; role: ApiRole }>, presented: Buffer): ApiRole | null {
  let found: ApiRole | null = null;
  // Every token is compared, so the time taken does not tell which one matched.
  for (const { bytes, role } of tokens) if (bytes.length === presented.length && timingSafeEqual(bytes, presented)) found = role;
  return found;
}

export function requiredRole(method: string, path: string): ApiRole {
  if (path.startsWith("/api/v1/config") || path.startsWith("/api/v1/test/")) return "admin";
  if (path.startsWith("/api/v1/cluster") && method !== "GET") return "admin";
  if (method === "GET" || method === "HEAD") return "read";
  return "ingest";
}

function allows(role: ApiRole, needed: ApiRole): boolean {
  if (role === "admin") return true;
  if (role === "ingest") return needed !== "admin";
  return needed === "read";
}
