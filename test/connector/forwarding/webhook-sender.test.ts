/** The JSON webhook target against a real Bun.serve on 127.0.0.1 (server/connector/forwarding/webhook-sender.ts, http-batch.ts, target-factory.ts). */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { sendToWebhook, webhookBody, type WebhookTarget } from "../../../server/connector/forwarding/webhook-sender.ts";
import { outcomeOf } from "../../../server/connector/forwarding/http-batch.ts";
import { createForwardTarget } from "../../../server/connector/forwarding/target-factory.ts";
import { emptyOprEvent } from "../../../server/connector/events/event-record.ts";
import { encodeOprEvent } from "../../../server/connector/events/event-codec.ts";
import { PendingEvent } from "../../../server/state/pending-event.ts";
import type { OutboxEntry } from "../../../server/state/outbox-types.ts";
import { Logger } from "../../../server/log/logger.ts";

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const seen: Seen[] = [];
/** What the receiver answers next: a status, or a delay in ms before a 200. */
let answer: { status: number; location?: string; delayMs?: number } = { status: 200 };

const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: async (request) => {
    const url = new URL(request.url);
    seen.push({ method: request.method, path: url.pathname, headers: request.headers.toJSON(), body: await request.text() });
    if (answer.delayMs !== undefined) await Bun.sleep(answer.delayMs);
    return new Response(answer.status === 200 ? "ok" : `no: ${answer.status}`, { status: answer.status, headers: answer.location === undefined ? {} : { location: answer.location } });
  },
});
afterAll(() => receiver.stop(true));
beforeEach(() => {
  seen.length = 0;
  answer = { status: 200 };
});

const base = `http://127.0.0.1:${receiver.port}`;
const target: WebhookTarget = { url: `${base}/hook?tenant=a`, headers: { "X-Source": "opsconn", "X-Tenant": "a b" }, authorization: "Bearer s3cret", timeoutMs: 2_000 };
const entries = (n: number, from = 1): OutboxEntry[] => Array.from({ length: n }, (_, i) => new PendingEvent(from + i, `7.${i}`, 1, encodeOprEvent({ ...emptyOprEvent(), title: `event ${from + i}`, severity: "major" })));

describe("sendToWebhook", () => {
  test("2xx: delivered; one POST of {package, events:[{id, seq, event}]} as JSON with the configured headers and Authorization", async () => {
    answer = { status: 202 };
    expect(await sendToWebhook(target, "pkg", entries(3))).toEqual({ kind: "delivered", status: 202 });
    expect(seen).toHaveLength(1);
    const request = seen[0]!;
    expect([request.method, request.path]).toEqual(["POST", "/hook"]);
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.headers["x-source"]).toBe("opsconn");
    expect(request.headers["x-tenant"]).toBe("a b");
    expect(request.headers["authorization"]).toBe("Bearer s3cret");
    const body = JSON.parse(request.body) as { package: string; events: Array<{ id: string; seq: number; event: { title: string } }> };
    expect(body.package).toBe("pkg");
    expect(body.events.map((e) => [e.id, e.seq, e.event.title])).toEqual([
      ["7.0", 1, "event 1"],
      ["7.1", 2, "event 2"],
      ["7.2", 3, "event 3"],
    ]);
    expect(Object.keys(body.events[0]!)).toEqual(["id", "seq", "event"]);
  });

  test("no authorization: no Authorization header", async () => {
    const { authorization: _, ...open } = target;
    expect((await sendToWebhook(open, "pkg", entries(1))).kind).toBe("delivered");
    expect(seen[0]?.headers["authorization"]).toBeUndefined();
  });

  test("a re-send carries the same ids and seqs (receivers can drop duplicates)", async () => {
    await sendToWebhook(target, "pkg", entries(2));
    await sendToWebhook(target, "pkg", entries(2));
    expect(seen[1]?.body).toBe(seen[0]?.body as string);
    expect(webhookBody("pkg", entries(2))).toBe(seen[0]?.body as string);
  });

  test.each([503, 500, 408, 429])("HTTP %d: retry", async (status) => {
    answer = { status };
    expect(await sendToWebhook(target, "pkg", entries(1))).toEqual({ kind: "retry", reason: `HTTP ${status}` });
  });

  test.each([400, 401, 404, 413])("HTTP %d: refused, with the receiver's answer", async (status) => {
    answer = { status };
    const outcome = await sendToWebhook(target, "pkg", entries(1));
    expect(outcome).toMatchObject({ kind: "refused", status });
    expect(outcome.kind === "refused" && outcome.reason).toBe(`HTTP ${status}: no: ${status}`);
  });

  test("a redirect is refused and never followed (a followed 302 would turn the POST into an empty GET)", async () => {
    answer = { status: 302, location: `${base}/elsewhere` };
    const outcome = await sendToWebhook(target, "pkg", entries(1));
    expect(outcome).toMatchObject({ kind: "refused", status: 302 });
    expect(outcome.kind === "refused" && outcome.reason).toContain(`redirect to ${base}/elsewhere: fix package pkg's forward.url`);
    expect(seen.map((s) => s.path)).toEqual(["/hook"]);
  });

  test("unreachable or too slow: retry", async () => {
    expect((await sendToWebhook({ ...target, url: "http://127.0.0.1:9/hook" }, "pkg", entries(1))).kind).toBe("retry");
    answer = { status: 200, delayMs: 500 };
    expect((await sendToWebhook({ ...target, timeoutMs: 100 }, "pkg", entries(1))).kind).toBe("retry");
  });
});

describe("outcomeOf", () => {
  const cases: Array<[number, string]> = [
    [200, "delivered"],
    [204, "delivered"],
    [299, "delivered"],
    [301, "refused"],
    [307, "refused"],
    [400, "refused"],
    [403, "refused"],
    [408, "retry"],
    [409, "refused"],
    [429, "retry"],
    [500, "retry"],
    [502, "retry"],
    [599, "retry"],
  ];
  test.each(cases)("HTTP %d: %s", (status, kind) => {
    expect(outcomeOf({ status, body: "", location: null, redirectHint: "fix it" }).kind).toBe(kind as never);
  });
});

describe("the webhook target on a node", () => {
  const log = new Logger({ node: "n1", level: "error", pretty: false, sink: { write: () => {} } });
  const context = { packageName: "pkg", epoch: 1, omiTarget: null, consumers: null, cursor: () => 0, log };
  const forward = { type: "webhook" as const, url: `${base}/hook`, headers: { "X-A": "1" }, authorizationEnv: "OPSCONN_TEST_HOOK_TOKEN" };

  test("authorizationEnv set on this node: its value is the Authorization header", async () => {
    const webhook = createForwardTarget(forward, { ...context, env: { OPSCONN_TEST_HOOK_TOKEN: "Bearer from-env" } });
    expect(webhook.alarm()).toBeNull();
    expect(webhook.status()).toEqual({ type: "webhook", url: `${base}/hook` });
    expect((await webhook.send(entries(1))).kind).toBe("delivered");
    expect(seen[0]?.headers["authorization"]).toBe("Bearer from-env");
    expect(seen[0]?.headers["x-a"]).toBe("1");
  });

  test("authorizationEnv not set here: nothing is sent, retry, and a standing alarm names the variable", async () => {
    const webhook = createForwardTarget(forward, { ...context, env: {} });
    expect(webhook.alarm()).toContain("environment variable OPSCONN_TEST_HOOK_TOKEN");
    expect(await webhook.send(entries(1))).toMatchObject({ kind: "retry" });
    expect(seen).toHaveLength(0);
  });
});
