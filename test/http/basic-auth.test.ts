/** Basic auth next to tokens, in-process: roles, scope, malformed headers, challenges, /ws/forward. */
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { authorize, basicCredentialsCharsMax, parseAuthorization, requiredRole, type AuthSettings } from "../../server/http/middleware/auth.ts";
import { ConfigError, type Env } from "../../server/config/node-config.ts";

const env: Env = {
  NAGIOS_PASSWORD: "nagios-secret",
  COLON_PASSWORD: "pa:ss:word",
  READER_PASSWORD: "same-password",
  FEEDER_PASSWORD: "same-password",
  WIDE_PASSWORD: "wide-secret",
  ROOT_PASSWORD: "root-secret",
  "EMPTY": "",
};
const settings: AuthSettings = {
  apiTokens: [
    { token: "admin-token-0123456789", role: "admin" },
    { token: "ingest-token-0123456789", role: "ingest" },
    { token: "read-token-0123456789ab", role: "read" },
  ],
  basicAuth: [
    { user: "nagios", passwordEnv: "NAGIOS_PASSWORD", role: "ingest" },
    { user: "colon", passwordEnv: "COLON_PASSWORD", role: "ingest", scope: "events" },
    { user: "reader", passwordEnv: "READER_PASSWORD", role: "read" },
    { user: "feeder", passwordEnv: "FEEDER_PASSWORD", role: "ingest" },
    { user: "wide", passwordEnv: "WIDE_PASSWORD", role: "ingest", scope: "all" },
    { user: "root", passwordEnv: "ROOT_PASSWORD", role: "admin", scope: "all" },
  ],
};

/** The middleware in front of a catch-all route: 200 means it let the request through. */
function appWith(auth: AuthSettings, variables: Env = env): Hono {
  const app = new Hono();
  app.use("*", authorize(auth, variables));
  app.all("*", (c) => c.json({ passed: true }));
  app.onError((error, c) => c.json({ error: { status: 500, message: error.message } }, 500));
  return app;
}

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString("base64")}`;
const events = "/bsmc/rest/events/nagios";

async function call(app: Hono, method: string, path: string, authorization: string | null) {
  const res = await app.request(path, { method, headers: authorization === null ? {} : { authorization } });
  const body = (await res.json()) as { passed?: true; error?: { message: string } };
  return { status: res.status, message: body.error?.message ?? "", challenge: res.headers.get("www-authenticate") ?? "" };
}

describe("basic auth: roles and scope", () => {
  const app = appWith(settings);
  test.each([
    ["valid ingest user posts an event", "POST", events, basic("nagios:nagios-secret"), 200, ""],
    ["valid ingest user may GET on the listener", "GET", events, basic("nagios:nagios-secret"), 200, ""],
    ["scheme in lower case", "POST", events, `basic ${Buffer.from("nagios:nagios-secret").toString("base64")}`, 200, ""],
    ["password holding ':' (the user ends at the first)", "POST", events, basic("colon:pa:ss:word"), 200, ""],
    ["wrong password", "POST", events, basic("nagios:nagios-secreT"), 401, "unknown user or wrong password"],
    ["empty password", "POST", events, basic("nagios:"), 401, "unknown user or wrong password"],
    ["unknown user", "POST", events, basic("nobody:nagios-secret"), 401, "unknown user or wrong password"],
    ["user name case matters", "POST", events, basic("Nagios:nagios-secret"), 401, "unknown user or wrong password"],
    ["another user's password", "POST", events, basic("nagios:wide-secret"), 401, "unknown user or wrong password"],
    ["read user cannot post (same role rules as tokens)", "POST", events, basic("reader:same-password"), 403, "has role 'read'"],
    ["same password, the other user's role", "POST", events, basic("feeder:same-password"), 200, ""],
    ["listener-scoped user outside the listener", "GET", "/api/v1/status", basic("nagios:nagios-secret"), 403, "only on the event listener"],
    ["listener-scoped user, wrong password, outside the listener", "GET", "/api/v1/status", basic("nagios:wrong"), 401, "unknown user or wrong password"],
    ["ingest user cannot reach the configuration", "GET", "/api/v1/config", basic("nagios:nagios-secret"), 403, ""],
    ["ingest user with scope all cannot read the configuration", "GET", "/api/v1/config", basic("wide:wide-secret"), 403, "needs 'admin'"],
    ["ingest user with scope all cannot change the configuration", "PUT", "/api/v1/config", basic("wide:wide-secret"), 403, "needs 'admin'"],
    ["dot segments do not escape the listener scope", "GET", "/bsmc/rest/../api/v1/config", basic("nagios:nagios-secret"), 403, "only on the event listener"],
    ["ingest user with scope all reads status", "GET", "/api/v1/status", basic("wide:wide-secret"), 200, ""],
    ["admin user with scope all reads the configuration", "GET", "/api/v1/config", basic("root:root-secret"), 200, ""],
    ["tokens still work", "GET", "/api/v1/config", "Bearer admin-token-0123456789", 200, ""],
    ["unknown token", "GET", "/api/v1/status", "Bearer bogus-token-0123456789", 401, "unknown token"],
    ["no credentials", "POST", events, null, 401, "a Bearer token or Basic credentials are required"],
    ["an unknown scheme", "POST", events, "Digest username=nagios", 401, "a Bearer token or Basic credentials are required"],
    ["/healthz stays open", "GET", "/healthz", null, 200, ""],
  ] as const)("%s", async (_name, method, path, authorization, expected, fragment) => {
    const result = await call(app, method, path, authorization);
    expect(result.status).toBe(expected);
    expect(result.message).toContain(fragment);
  });
});

describe("basic auth: malformed headers are 401 naming the problem", () => {
  const app = appWith(settings);
  test.each([
    ["no credentials after the scheme", "Basic", "Basic credentials are empty"],
    ["only spaces after the scheme", "Basic    ", "Basic credentials are empty"],
    ["characters outside base64", "Basic bmFn*aW9z", "not valid base64"],
    ["URL-safe alphabet", "Basic bmFn_aW9z", "not valid base64"],
    ["a length no encoding has", "Basic QUJDR", "not valid base64"],
    ["padding on a wrong length", "Basic QUI=A", "not valid base64"],
    ["three padding characters", "Basic QQ===", "not valid base64"],
    ["padding cut short", "Basic QUJDRA=", "not valid base64"],
    ["no colon", `Basic ${Buffer.from("nagios").toString("base64")}`, "no ':' between user and password"],
    ["over-long", `Basic ${"QUJD".repeat(basicCredentialsCharsMax / 4 + 1)}`, `exceed ${basicCredentialsCharsMax} characters`],
  ] as const)("%s", async (_name, authorization, fragment) => {
    const result = await call(app, "POST", events, authorization);
    expect(result.status).toBe(401);
    expect(result.message).toContain(fragment);
    expect(result.challenge).toContain('Basic realm="opsconn"');
  });

  test("padding may be left off, as some clients do", async () => {
    const padded = Buffer.from("nagios:nagios-secret").toString("base64");
    expect(padded.endsWith("=")).toBe(true);
    expect((await call(app, "POST", events, `Basic ${padded.replace(/=+$/, "")}`)).status).toBe(200);
  });

  test("the longest valid credentials fit the header limit", () => {
    const longest = `${"u".repeat(64)}:${"p".repeat(1024)}`;
    expect(Buffer.from(longest).toString("base64").length).toBeLessThanOrEqual(basicCredentialsCharsMax);
  });

  test("seeded random headers never crash the middleware", async () => {
    let seed = 0x5eed;
    const next = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:-_ *!~";
    for (let i = 0; i < 300; i++) {
      const length = Math.floor(next() * 40);
      const text = Array.from({ length }, () => alphabet[Math.floor(next() * alphabet.length)]).join("");
      const authorization = next() < 0.5 ? `Basic ${text}` : `Basic ${Buffer.from(text).toString("base64")}`;
      const { status } = await call(app, "POST", events, authorization);
      expect([200, 401, 403]).toContain(status);
    }
  });

  test("parsing never throws, whatever the text", () => {
    for (const header of ["", " ", "Basic", "Basic é", "Basic \u0000", "BASIC Og==", "Bearer", "Basic " + "=".repeat(8)]) {
      expect(() => parseAuthorization(header)).not.toThrow();
    }
    expect(parseAuthorization("BASIC Og==")).toEqual({ kind: "basic", user: Buffer.alloc(0), password: Buffer.alloc(0) });
  });
});

describe("basic auth: challenges and configuration", () => {
  test("401 offers Basic on the listener alongside Bearer", async () => {
    const { status, challenge } = await call(appWith(settings), "POST", events, null);
    expect(status).toBe(401);
    expect(challenge).toContain('Bearer realm="opsconn"');
    expect(challenge).toContain('Basic realm="opsconn"');
  });

  test("401 outside the listener offers Basic only if some user has scope all", async () => {
    const listenerOnly = { ...settings, basicAuth: [{ user: "nagios", passwordEnv: "NAGIOS_PASSWORD", role: "ingest" as const }] };
    const narrow = await call(appWith(listenerOnly), "GET", "/api/v1/status", null);
    expect(narrow.status).toBe(401);
    expect(narrow.challenge).toContain("Bearer");
    expect(narrow.challenge).not.toContain("Basic");
    expect((await call(appWith(settings), "GET", "/api/v1/status", null)).challenge).toContain('Basic realm="opsconn"');
  });

  test("with tokens only, Basic is neither offered nor accepted", async () => {
    const app = appWith({ apiTokens: settings.apiTokens });
    const result = await call(app, "POST", events, basic("nagios:nagios-secret"));
    expect(result.status).toBe(401);
    expect(result.message).toContain("accepts no Basic credentials");
    expect(result.challenge).not.toContain("Basic");
    expect((await call(app, "POST", events, "Basic !!")).message).toContain("accepts no Basic credentials");
  });

  test("basic users alone close the API", async () => {
    const app = appWith({ apiTokens: [], basicAuth: [{ user: "nagios", passwordEnv: "NAGIOS_PASSWORD", role: "ingest" }] });
    expect((await call(app, "GET", "/api/v1/status", null)).status).toBe(401);
    expect((await call(app, "POST", events, basic("nagios:nagios-secret"))).status).toBe(200);
  });

  test("with neither tokens nor basic users the API is open", async () => {
    expect((await call(appWith({ apiTokens: [], basicAuth: [] }), "PUT", "/api/v1/config", null)).status).toBe(200);
    expect((await call(appWith({ apiTokens: [] }), "POST", events, basic("x:y"))).status).toBe(200);
  });

  test("a bare token list is still accepted", async () => {
    const app = new Hono();
    app.use("*", authorize(settings.apiTokens, {}));
    app.all("*", (c) => c.text("ok"));
    expect((await app.request("/api/v1/status")).status).toBe(401);
    expect((await app.request("/api/v1/status", { headers: { authorization: "Bearer read-token-0123456789ab" } })).status).toBe(200);
  });

  test("a missing or empty password variable fails at start, naming it", () => {
    const missing = { apiTokens: [], basicAuth: [{ user: "nagios", passwordEnv: "NOT_SET_ANYWHERE", role: "ingest" as const }] };
    expect(() => authorize(missing, env)).toThrow(ConfigError);
    expect(() => authorize(missing, env)).toThrow("NOT_SET_ANYWHERE");
    expect(() => authorize({ apiTokens: [], basicAuth: [{ user: "e", passwordEnv: "EMPTY", role: "read" }] }, env)).toThrow("EMPTY");
  });
});

describe("/ws/forward needs ingest", () => {
  const app = appWith(settings);
  test.each([
    ["read token", "Bearer read-token-0123456789ab", 403],
    ["ingest token", "Bearer ingest-token-0123456789", 200],
    ["read user with scope all", null, 403],
    ["ingest user with scope all", basic("wide:wide-secret"), 200],
    ["ingest user scoped to the listener", basic("nagios:nagios-secret"), 403],
  ] as const)("GET /ws/forward/pkg as %s", async (_name, authorization, expected) => {
    const wideReader = appWith({ apiTokens: [], basicAuth: [{ user: "r", passwordEnv: "READER_PASSWORD", role: "read", scope: "all" }] });
    const result = authorization === null ? await call(wideReader, "GET", "/ws/forward/pkg", basic("r:same-password")) : await call(app, "GET", "/ws/forward/pkg", authorization);
    expect(result.status).toBe(expected);
  });

  test("requiredRole", () => {
    expect(requiredRole("GET", "/ws/forward/pkg")).toBe("ingest");
    expect(requiredRole("HEAD", "/ws/forward/pkg")).toBe("ingest");
    expect(requiredRole("GET", "/api/v1/status")).toBe("read");
    expect(requiredRole("POST", "/bsmc/rest/events/nagios")).toBe("ingest");
  });
});
