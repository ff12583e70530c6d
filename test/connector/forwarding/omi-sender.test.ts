/** Sending batches to OMi, against the OMi receiver simulator on a real socket (server/connector/forwarding/omi-sender.ts). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { omiEventListBytes } from "../../../server/connector/events/omi-xml-bytes.ts";
import { OmiForwardTarget, retryDelayMs, sendToOmi, type OmiTarget } from "../../../server/connector/forwarding/omi-sender.ts";
import { encodeOprEvent } from "../../../server/connector/events/event-codec.ts";
import { PendingEvent } from "../../../server/state/pending-event.ts";
import { emptyOprEvent, type OprEvent } from "../../../server/connector/events/event-record.ts";
import { SimStore } from "../../../server/omi-sim/sim-store.ts";
import { createSimApp } from "../../../server/omi-sim/sim-app.ts";
import { cleanupAll, tempDir } from "../../support/node-process.ts";

let server: Server<unknown>;
let store: SimStore;
let target: OmiTarget;
const seenAuth: string[] = [];

beforeAll(async () => {
  store = await SimStore.open(tempDir());
  const app = createSimApp(store);
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (request) => (seenAuth.push(request.headers.get("authorization") ?? ""), app.fetch(request)) });
  target = { baseUrl: `http://127.0.0.1:${server.port}/`, user: "admin", password: "secret", timeoutMs: 2_000 };
});
afterAll(() => {
  server.stop(true);
  store.close();
  cleanupAll();
});

/** A batch as the OMi target sends it: written from the events' stored binary form. */
const eventList = (batch: OprEvent[]) => omiEventListBytes(batch.map(encodeOprEvent));
const events = (n: number): OprEvent[] => Array.from({ length: n }, (_, i) => ({ ...emptyOprEvent(), title: `event ${i}`, severity: "major", state: "open", key: `k${i}` }));
const fault = (mode: string) => fetch(`http://127.0.0.1:${server.port}/omi-sim/faults`, { method: "POST", body: JSON.stringify({ mode, delayMs: 500 }), headers: { "content-type": "application/json" } });

describe("sendToOmi", () => {
  test("a batch is delivered as one OMi event list, with basic auth", async () => {
    expect(await sendToOmi(target, eventList(events(3)))).toEqual({ kind: "delivered", status: 200 });
    expect(await store.stats()).toMatchObject({ deliveries: 1, eventsDelivered: 3, events: 3 });
    expect(seenAuth.at(-1)).toBe(`Basic ${Buffer.from("admin:secret").toString("base64")}`);
  });

  test("OMi failing, down, slow past the timeout, or unreachable: retry; a refusal (4xx): do not", async () => {
    await fault("fail");
    expect((await sendToOmi(target, eventList(events(1)))).kind).toBe("retry");
    await fault("down");
    expect((await sendToOmi(target, eventList(events(1)))).kind).toBe("retry");
    await fault("slow");
    expect(await sendToOmi({ ...target, timeoutMs: 100 }, eventList(events(1)))).toMatchObject({ kind: "retry" });
    await fault("ok");
    expect((await sendToOmi({ ...target, baseUrl: "http://127.0.0.1:9" }, eventList(events(1)))).kind).toBe("retry");
    const refused = await sendToOmi({ ...target, baseUrl: `${target.baseUrl}wrong-prefix` }, eventList(events(1)));
    expect(refused).toMatchObject({ kind: "refused", status: 404 });
  });
});

describe("retryDelayMs", () => {
  test("full jitter under an exponential ceiling, capped", () => {
    const backoff = { baseMs: 100, maxMs: 5_000 };
    expect([1, 2, 3, 4, 10].map((a) => retryDelayMs(a, backoff, () => 0.999999))).toEqual([99, 199, 399, 799, 4999]);
    expect(retryDelayMs(3, backoff, () => 0)).toBe(0);
    expect(retryDelayMs(1000, backoff, () => 0.5)).toBe(2500);
  });
});

describe("OmiForwardTarget", () => {
  test("sends outbox entries as one event list written from their stored bytes; OMi stores them as sent", async () => {
    // Keys of their own: the earlier tests' events are still active in OMi, and would be merged into.
    const sent = [...events(2).map((e) => ({ ...e, key: `target-${e.key}` })), { ...emptyOprEvent(), title: "ünïcode & <markup>", severity: "critical", state: "open", custom_attributes: { team: "ops" } }];
    const batch = sent.map((event, i) => new PendingEvent(i + 1, `9.${i}`, 1, encodeOprEvent(event)));
    const before = store.stats();
    expect(await new OmiForwardTarget(target).send(batch)).toEqual({ kind: "delivered", status: 200 });
    expect(store.stats()).toMatchObject({ deliveries: before.deliveries + 1, eventsDelivered: before.eventsDelivered + 3 });
    const stored = (await store.events()).slice(-3);
    expect(stored.map((e) => [e.title, e.severity, e.key, { ...e.custom_attributes }])).toEqual(sent.map((e) => [e.title, e.severity, e.key, { ...e.custom_attributes }]));
  });
});

describe("sendToOmi and redirects", () => {
  test("a redirect is never followed (it would turn the POST into an empty GET): refused, named", async () => {
    const redirecting = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(null, { status: 301, headers: { location: `http://127.0.0.1:${server.port}/opr-web/rest/9.10/event_list` } }) });
    try {
      const before = (await store.stats()).deliveries;
      const outcome = await sendToOmi({ ...target, baseUrl: `http://127.0.0.1:${redirecting.port}` }, eventList(events(2)));
      expect(outcome).toMatchObject({ kind: "refused", status: 301 });
      expect(outcome.kind === "refused" && outcome.reason).toContain("redirect");
      expect((await store.stats()).deliveries).toBe(before);
    } finally {
      redirecting.stop(true);
    }
  });
});
