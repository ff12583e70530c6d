/** One forwarder loop for every target (event-forwarder.ts with omi-sender.ts and webhook-sender.ts), over a real outbox and a fake group. */
import { afterEach, expect, test } from "bun:test";
import { OmiForwardTarget } from "../../../server/connector/forwarding/omi-sender.ts";
import { WebhookForwardTarget } from "../../../server/connector/forwarding/webhook-sender.ts";
import type { ForwardTarget } from "../../../server/connector/forwarding/forward-target.ts";
import type { OutboxEntry } from "../../../server/state/outbox-types.ts";
import { emptyOprEvent, type OprEvent } from "../../../server/connector/events/event-record.ts";
import { encodeOprEvent } from "../../../server/connector/events/event-codec.ts";
import { forwardingLimits } from "../../../server/constants.ts";
import { outboxForwarding } from "../../support/outbox-forwarding.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function forwarding(events: number, target: ForwardTarget, eventOf?: (n: number) => OprEvent) {
  const forwarding = outboxForwarding({ events, target, batchEventsMax: 500, ...(eventOf === undefined ? {} : { eventOf }) });
  cleanups.push(() => forwarding.forwarder.stop());
  return forwarding;
}

/** A receiver on 127.0.0.1 answering `status()` and recording each body. */
function receiver(status: () => number) {
  const bodies: string[] = [];
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: async (request) => (bodies.push(await request.text()), new Response(null, { status: status() })) });
  cleanups.push(() => server.stop(true));
  return { bodies, url: `http://127.0.0.1:${server.port}` };
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

test("OMi: 1,200 events go as three event lists, one after the other, and the cursor follows", async () => {
  const omi = receiver(() => 200);
  const { forwarder, cursor } = forwarding(1_200, new OmiForwardTarget({ baseUrl: omi.url, timeoutMs: 2_000 }));
  forwarder.start();
  await until(() => cursor() === 1_200);
  expect(omi.bodies).toHaveLength(3);
  expect(omi.bodies.map((b) => (b.match(/<event>/g) ?? []).length)).toEqual([500, 500, 200]);
  expect(omi.bodies[0]).toContain("event 1<");
  expect(omi.bodies[2]).toContain("event 1200<");
  expect(forwarder.status()).toMatchObject({ target: { type: "omi", url: omi.url }, delivered: 1_200, attempts: 3, batchesInFlight: 0, alarm: null });
});

test("OMi without an omiTarget on this node: nothing is attempted, a standing alarm, events wait", async () => {
  const { forwarder, outbox } = forwarding(10, new OmiForwardTarget(null));
  forwarder.start();
  await Bun.sleep(200);
  expect(forwarder.status()).toMatchObject({ target: { type: "omi", url: null }, attempts: 0, alarm: "no omiTarget configured on this node" });
  expect(outbox.status()[0]?.backlog).toBe(10);
});

test("webhook: a refused batch raises an alarm and is retried, never dropped; once accepted the alarm clears", async () => {
  // 403 blames the target's configuration, not the batch: no bisect, no dead letters (refusal.ts).
  let answer = 403;
  const hook = receiver(() => answer);
  const target = new WebhookForwardTarget({ packageName: "pkg", target: { url: `${hook.url}/in`, headers: {}, timeoutMs: 2_000 }, problem: null });
  const { forwarder, cursor } = forwarding(20, target);
  forwarder.start();
  await until(() => hook.bodies.length >= 2);
  expect(forwarder.status().alarm).toContain("the webhook target refused a batch of 20 (seq 1..20): HTTP 403");
  expect(cursor()).toBe(0);
  answer = 200;
  await until(() => cursor() === 20);
  expect(forwarder.status()).toMatchObject({ target: { type: "webhook" }, delivered: 20, alarm: null });
  const ids = hook.bodies.map((b) => (JSON.parse(b) as { events: Array<{ id: string }> }).events.map((e) => e.id).join());
  // Every attempt carried the same ids: the receiver can tell a re-send.
  expect(new Set(ids).size).toBe(1);
});

test("a batch is bounded by stored bytes as well as by events: events of about 1 MB go a few at a time", async () => {
  const batches: OutboxEntry[][] = [];
  const target: ForwardTarget = {
    type: "webhook",
    batchesInFlightMax: 1,
    start: () => {},
    stop: () => {},
    abandon: () => {},
    committed: () => {},
    alarm: () => null,
    status: () => ({ type: "webhook", url: "http://receiver.test" }),
    send: async (batch) => (batches.push([...batch]), { kind: "delivered" }),
  };
  const { forwarder, cursor } = forwarding(12, target, (n) => ({ ...emptyOprEvent(), title: `event ${n}`, description: "x".repeat(1_000_000) }));
  forwarder.start();
  await until(() => cursor() === 12);
  const bytes = batches.map((batch) => batch.map((e) => encodeOprEvent(e.event).length));
  expect(bytes.flat()).toHaveLength(12);
  expect(batches.length).toBeGreaterThan(1);
  for (const [i, batch] of bytes.entries()) {
    const total = batch.reduce((sum, b) => sum + b, 0);
    expect(total).toBeLessThanOrEqual(forwardingLimits.batchBytesMax);
    // Full: the next event would not have fitted.
    if (i < bytes.length - 1) expect(total + bytes[i + 1]![0]!).toBeGreaterThan(forwardingLimits.batchBytesMax);
  }
});
