/** The Hono app in-process: routes, JSON errors, body limit. */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../server/http/app.ts";
import { Logger } from "../../server/log/logger.ts";
import { httpLimits } from "../../server/constants.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";

const logged: string[] = [];
const log = new Logger({ node: "t", level: "debug", pretty: false, sink: { write: (l) => logged.push(l) } });
const status = { nodeId: "n1", version: "0.0.0", uptimeMs: 5, dataDir: "/d" };
const app = createApp({ log, status: { status: () => status }, group: () => null, state: new ReplicatedState(), peerHttp: { scheme: "http", ca: null } });

describe("http app", () => {
  test("GET /healthz", async () => {
    const res = await app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("GET /api/v1/status describes the node", async () => {
    const res = await app.request("/api/v1/status");
    expect(await res.json()).toEqual(status);
  });

  test("unknown route is a JSON 404 naming the route", async () => {
    const res = await app.request("/api/v1/nope", { method: "POST" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { status: 404, message: "no route for POST /api/v1/nope" } });
  });

  test("oversized body is a JSON 413", async () => {
    const body = new Uint8Array(httpLimits.bodyBytesMax + 1);
    const res = await app.request("/healthz", { method: "POST", body, headers: { "content-length": String(body.length) } });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("exceeds");
  });
});
