/** Tokens with roles, and the configuration API's validation, in-process. */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../server/http/app.ts";
import { Logger } from "../../server/log/logger.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { requiredRole } from "../../server/http/middleware/auth.ts";

const log = new Logger({ node: "t", level: "error", pretty: false, sink: { write: () => {} } });
const status = { nodeId: "n1", version: "0.0.0", uptimeMs: 5, dataDir: "/d" };
const tokens = [
  { token: "admin-token-0123456789", role: "admin" as const },
  { token: "ingest-token-0123456789", role: "ingest" as const },
  { token: "read-token-0123456789ab", role: "read" as const },
];
const make = (withTokens: boolean) =>
  createApp({ log, status: { status: () => status }, group: () => null, state: new ReplicatedState(), peerHttp: { scheme: "http", ca: null }, tokens: withTokens ? tokens : [] });
const as = (role: "admin" | "ingest" | "read" | "none" | "bogus") =>
  role === "none" ? {} : { authorization: `Bearer ${role === "bogus" ? "bogus-token-0123456789" : tokens.find((t) => t.role === role)!.token}` };

describe("API tokens", () => {
  const app = make(true);
  test.each([
    ["GET", "/healthz", "none", 200],
    ["GET", "/api/v1/status", "none", 401],
    ["GET", "/api/v1/status", "bogus", 401],
    ["GET", "/api/v1/status", "read", 200],
    ["PUT", "/api/v1/kv/k", "read", 403],
    ["PUT", "/api/v1/kv/k", "ingest", 503], // allowed; no group in this test
    ["GET", "/api/v1/config", "read", 403],
    ["GET", "/api/v1/config", "ingest", 403],
    ["GET", "/api/v1/config", "admin", 503],
    ["POST", "/api/v1/cluster/nodes", "ingest", 403],
    ["GET", "/api/v1/cluster/nodes", "read", 503],
  ] as const)("%s %s as %s: %d", async (method, path, role, expected) => {
    const res = await app.request(path, { method, headers: as(role), ...(method === "PUT" ? { body: "v" } : {}) });
    expect(res.status).toBe(expected);
    if (expected === 401) expect(res.headers.get("www-authenticate")).toContain("Bearer");
    if (expected >= 400) expect(((await res.json()) as { error: { message: string } }).error.message.length).toBeGreaterThan(0);
  });

  test("without tokens the API is open", async () => {
    expect((await make(false).request("/api/v1/status")).status).toBe(200);
  });

  test("roles by route", () => {
    expect(requiredRole("GET", "/api/v1/config/policies")).toBe("admin");
    expect(requiredRole("POST", "/bsmc/rest/events/nagios")).toBe("ingest");
    expect(requiredRole("GET", "/api/v1/kv/a")).toBe("read");
    expect(requiredRole("DELETE", "/api/v1/cluster/nodes/n2")).toBe("admin");
  });
});

describe("configuration API validation (nothing proposed)", () => {
  const app = make(false);
  test("an invalid model is a 400 listing every problem", async () => {
    const document = {
      apiVersion: "opsconn/v1",
      policies: [
        { name: "a", type: "event-listener", path: "x", inputFormat: "json", surprise: 1 },
        { name: "b", type: "event-listener", path: "x", inputFormat: "json", rules: [{ name: "r", if: { field: "f", regex: "(" }, action: "send" }] },
      ],
      packages: [{ name: "p", policies: ["a", "missing"] }],
    };
    const res = await app.request("/api/v1/config", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(document) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; problems: Array<{ path: string; message: string }> } };
    expect(body.error.problems.length).toBeGreaterThanOrEqual(4);
    const text = JSON.stringify(body.error.problems);
    for (const fragment of ["surprise", "regex", "missing", "path"]) expect(text).toContain(fragment);
  });

  test("YAML with an alias bomb, a wrong content type and broken JSON are refused", async () => {
    const bomb = 'apiVersion: opsconn/v1\na: &a ["x","x"]\nb: &b [*a,*a]\nc: [*b,*b]\n';
    const yaml = await app.request("/api/v1/config", { method: "PUT", headers: { "content-type": "application/yaml" }, body: bomb });
    expect(yaml.status).toBe(400);
    expect((await app.request("/api/v1/config", { method: "PUT", headers: { "content-type": "text/plain" }, body: "x" })).status).toBe(415);
    expect((await app.request("/api/v1/config", { method: "PUT", headers: { "content-type": "application/json" }, body: "{" })).status).toBe(400);
  });
});
