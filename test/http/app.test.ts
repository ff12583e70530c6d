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

  test("an oversized body without a declared length (chunked) is counted while read: a JSON 413 too", async () => {
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > httpLimits.bodyBytesMax) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await app.request("/healthz", { method: "POST", body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("exceeds");
  });

  test("a declared length over the limit is refused before the body is read", async () => {
    const res = await app.request("/healthz", { method: "POST", body: "small", headers: { "content-length": String(httpLimits.bodyBytesMax + 1) } });
    expect(res.status).toBe(413);
  });

  test("oversized body is a JSON 413", async () => {
    const body = new Uint8Array(httpLimits.bodyBytesMax + 1);
    const res = await app.request("/healthz", { method: "POST", body, headers: { "content-length": String(body.length) } });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("exceeds");
  });
});
