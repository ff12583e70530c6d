/**
 * @module Who may call the API: tokens with roles (`apiTokens`) and, for existing integrations that
 * cannot send a Bearer token, basic-auth users (`basicAuth`). With neither configured the API is open
 * (a single-user lab; the node logs a warning at start). Otherwise every route but /healthz and the
 * peer link (which authenticates peers itself) needs `Authorization: Bearer <token>` or
 * `Authorization: Basic <base64(user:password)>`, and the caller's role decides:
 * - admin: everything, and only admin reads or changes configuration or membership;
 * - ingest: sends data (the key-value API, events, later metrics and topology; a WebSocket consumer
 *   of /ws/forward/, which acknowledges batches and so moves the forwarding cursor) and reads status;
 * - read: GET requests outside configuration.
 * No or unknown credentials: 401; known credentials without the role: 403.
 *
 * Basic auth is accepted on the event listener (`/bsmc/rest/...`) only, unless a user's `scope` is
 * `all`. The OpsCx/OMi scripts it exists for only post events; a basic password is long-lived,
 * sent on every request and usually sits in those scripts' own config files, so a leaked one should
 * reach no further than the listener. A basic user outside its scope gets 403 (its password is
 * checked first, so the answer tells nothing to a caller without it), and 401 answers offer the
 * `Basic` challenge only where some user could use it, so a browser opening the API does not pop up
 * a login box that cannot succeed.
 *
 * Secrets are compared in constant time. Basic users are all checked, user name and password both,
 * so the time taken does not tell which user matched, or whether the name or the password was
 * wrong; the two sides are compared as SHA-256 digests, fixed length, so no length leaks either.
 * Configured digests are computed once at start; a request costs one base64 decode and two
 * SHA-256 of its own short credentials, never a slow password KDF (this runs on every ingest request).
 */
import type { Context, MiddlewareHandler } from "hono";
import { createHash, timingSafeEqual } from "node:crypto";
import { errorBody } from "../errors.ts";
import { PEER_PATH } from "../../transport/peer-link.ts";
import { readBasicAuth, type Env } from "../../config/node-config.ts";
import { basicAuthLimits } from "../../constants.ts";
import { assert, unreachable } from "../../assert.ts";

export type ApiRole = "admin" | "ingest" | "read";

export interface ApiToken {
  readonly token: string;
  readonly role: ApiRole;
}

/** Where a basic-auth user is accepted: the event listener only (the default), or every path. */
export type BasicAuthScope = "events" | "all";

/** A basic-auth user as configured: the password is named by an environment variable, never written. */
export interface BasicAuthUser {
  readonly user: string;
  readonly passwordEnv: string;
  readonly role: ApiRole;
  readonly scope?: BasicAuthScope;
}

/** A basic-auth user with its password, read from the environment at start (`readBasicAuth`). */
export interface BasicCredential {
  readonly user: string;
  readonly password: string;
  readonly role: ApiRole;
  readonly scope: BasicAuthScope;
}

/** The node config's authentication settings; a whole `NodeConfig` is one. */
export interface AuthSettings {
  readonly apiTokens: readonly ApiToken[];
  readonly basicAuth?: readonly BasicAuthUser[];
}

const open = new Set(["/healthz", PEER_PATH]);
const eventListenerPrefix = "/bsmc/rest/";
/** Base64 of the longest valid `user:password`: anything longer is refused before decoding. */
export const basicCredentialsCharsMax = 4 * Math.ceil((basicAuthLimits.userCharsMax + 1 + basicAuthLimits.passwordBytesMax) / 3);

interface Verifier {
  readonly tokens: ReadonlyArray<{ readonly bytes: Buffer; readonly role: ApiRole }>;
  readonly basic: ReadonlyArray<{ readonly name: string; readonly user: Buffer; readonly password: Buffer; readonly role: ApiRole; readonly scope: BasicAuthScope }>;
  /** Some basic user may use every path, so the Basic challenge is offered everywhere. */
  readonly basicEverywhere: boolean;
}

/**
 * The middleware for the node's settings. Basic-auth passwords are read from `env` here, once, at
 * start: a missing or empty variable throws ConfigError naming it. A bare token list is accepted
 * for callers that know only tokens.
 */
export function authorize(settings: AuthSettings | readonly ApiToken[], env: Env = process.env): MiddlewareHandler {
  const verifier = makeVerifier("apiTokens" in settings ? settings : { apiTokens: settings }, env);
  if (verifier.tokens.length === 0 && verifier.basic.length === 0) return async (_c, next) => next();
  return async (c, next) => {
    const { method, path } = c.req;
    if (open.has(path)) return next();
    const caller = identify(verifier, parseAuthorization(c.req.header("authorization") ?? ""));
    if (typeof caller === "string") return unauthorized(c, verifier, caller);
    if (caller.scope === "events" && !isEventListenerPath(path)) {
      return c.json(errorBody(403, `${caller.name} may use Basic auth only on the event listener (${eventListenerPrefix}...); ${method} ${path} needs a Bearer token`), 403);
    }
    const needed = requiredRole(method, path);
    if (!allows(caller.role, needed)) return c.json(errorBody(403, `${caller.name} has role '${caller.role}'; ${method} ${path} needs '${needed}'`), 403);
    return next();
  };
}

function makeVerifier(settings: AuthSettings, env: Env): Verifier {
  const basic = readBasicAuth(settings.basicAuth ?? [], env).map((u) => ({
    name: `user '${u.user}'`,
    user: digest(Buffer.from(u.user)),
    password: digest(Buffer.from(u.password)),
    role: u.role,
    scope: u.scope,
  }));
  assert(basic.length <= basicAuthLimits.usersMax, "basic-auth users are bounded by validation");
  return {
    tokens: settings.apiTokens.map((t) => ({ bytes: Buffer.from(t.token), role: t.role })),
    basic,
    basicEverywhere: basic.some((u) => u.scope === "all"),
  };
}

/** What the Authorization header presents; never throws, whatever the client sends. */
type Presented =
  | { readonly kind: "none" }
  | { readonly kind: "bearer"; readonly token: Buffer }
  | { readonly kind: "basic"; readonly user: Buffer; readonly password: Buffer }
  | { readonly kind: "malformed"; readonly problem: string };

/** The scheme is case-insensitive (RFC 9110 §11.1); anything but Bearer or Basic presents nothing. */
export function parseAuthorization(header: string): Presented {
  const space = header.indexOf(" ");
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const rest = space < 0 ? "" : header.slice(space + 1).trim();
  if (scheme === "bearer") return { kind: "bearer", token: Buffer.from(rest) };
  if (scheme === "basic") return parseBasic(rest);
  return { kind: "none" };
}

const base64Body = /^[A-Za-z0-9+/]*$/;

/** RFC 7617 credentials. Padding may be left off (some clients do), but nothing else is forgiven. */
function parseBasic(encoded: string): Presented {
  if (encoded.length === 0) return { kind: "malformed", problem: "Basic credentials are empty" };
  if (encoded.length > basicCredentialsCharsMax) return { kind: "malformed", problem: `Basic credentials exceed ${basicCredentialsCharsMax} characters` };
  const body = encoded.replace(/={1,2}$/, "");
  const padded = body.length !== encoded.length;
  if (!base64Body.test(body) || body.length % 4 === 1 || (padded && encoded.length % 4 !== 0)) {
    return { kind: "malformed", problem: "Basic credentials are not valid base64" };
  }
  const decoded = Buffer.from(body, "base64");
  const colon = decoded.indexOf(0x3a);
  if (colon < 0) return { kind: "malformed", problem: "Basic credentials have no ':' between user and password" };
  return { kind: "basic", user: decoded.subarray(0, colon), password: decoded.subarray(colon + 1) };
}

interface Caller {
  /** How messages name the caller: "this token" or "user 'nagios'". */
  readonly name: string;
  readonly role: ApiRole;
  readonly scope: BasicAuthScope;
}

/** The caller, or why it is not authenticated (a message for the 401). */
function identify(verifier: Verifier, presented: Presented): Caller | string {
  switch (presented.kind) {
    case "none":
      return verifier.basic.length === 0 ? "authorization: a Bearer token is required" : "authorization: a Bearer token or Basic credentials are required";
    case "malformed":
      return verifier.basic.length === 0 ? basicRefused : `authorization: ${presented.problem}`;
    case "bearer": {
      const role = tokenRoleOf(verifier.tokens, presented.token);
      return role === null ? "authorization: unknown token" : { name: "this token", role, scope: "all" };
    }
    case "basic": {
      if (verifier.basic.length === 0) return basicRefused;
      const user = basicUserOf(verifier.basic, presented.user, presented.password);
      return user === null ? "authorization: unknown user or wrong password" : { name: user.name, role: user.role, scope: user.scope };
    }
    default:
      return unreachable(presented);
  }
}

const basicRefused = "authorization: this node accepts no Basic credentials; send a Bearer token";

function tokenRoleOf(tokens: Verifier["tokens"], presented: Buffer): ApiRole | null {
  let found: ApiRole | null = null;
  // Every token is compared, so the time taken does not tell which one matched.
  for (const { bytes, role } of tokens) if (bytes.length === presented.length && timingSafeEqual(bytes, presented)) found = role;
  return found;
}

function basicUserOf(users: Verifier["basic"], presentedUser: Buffer, presentedPassword: Buffer): Verifier["basic"][number] | null {
  const user = digest(presentedUser);
  const password = digest(presentedPassword);
  let found: Verifier["basic"][number] | null = null;
  // Both comparisons run for every user: no early exit on a wrong name, no exit at the first match.
  for (const candidate of users) {
    const userMatches = timingSafeEqual(candidate.user, user);
    const passwordMatches = timingSafeEqual(candidate.password, password);
    if (userMatches && passwordMatches) found = candidate;
  }
  return found;
}

function digest(bytes: Buffer): Buffer {
  return createHash("sha256").update(bytes).digest();
}

function unauthorized(c: Context, verifier: Verifier, message: string): Response {
  c.header("www-authenticate", 'Bearer realm="opsconn"');
  if (verifier.basic.length > 0 && (verifier.basicEverywhere || isEventListenerPath(c.req.path))) {
    c.header("www-authenticate", 'Basic realm="opsconn", charset="UTF-8"', { append: true });
  }
  return c.json(errorBody(401, message), 401);
}

function isEventListenerPath(path: string): boolean {
  return path.startsWith(eventListenerPrefix);
}

export function requiredRole(method: string, path: string): ApiRole {
  if (path.startsWith("/api/v1/config") || path.startsWith("/api/v1/test/")) return "admin";
  if (path.startsWith("/api/v1/cluster") && method !== "GET") return "admin";
  // Requeueing dead letters sends refused events to the target again: an operator's decision.
  if (path.startsWith("/api/v1/outbox/") && method !== "GET" && method !== "HEAD") return "admin";
  // The upgrade is a GET, but the consumer acknowledges batches and so moves the forwarding cursor.
  if (path.startsWith("/ws/forward")) return "ingest";
  if (method === "GET" || method === "HEAD") return "read";
  return "ingest";
}

function allows(role: ApiRole, needed: ApiRole): boolean {
  if (role === "admin") return true;
  if (role === "ingest") return needed !== "admin";
  return needed === "read";
}
