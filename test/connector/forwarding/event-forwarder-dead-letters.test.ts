/**
 * The forwarder against a real receiver on 127.0.0.1 that refuses any list holding a poison event
 * (event-forwarder.ts with refusal.ts, over a real outbox and a fake group that applies each
 * proposal to it): the poison events are isolated into dead letters, every other event arrives once,
 * in order; a receiver that refuses the credentials dead-letters nothing.
 */
import { afterEach, expect, test } from "bun:test";
import { OmiForwardTarget } from "../../../server/connector/forwarding/omi-sender.ts";
import { WebhookForwardTarget } from "../../../server/connector/forwarding/webhook-sender.ts";
import type { ForwardTarget } from "../../../server/connector/forwarding/forward-target.ts";
import { emptyOprEvent } from "../../../server/connector/events/event-record.ts";
import { forwardingLimits } from "../../../server/constants.ts";
import { outboxForwarding } from "../../support/outbox-forwarding.ts";
import { poisonRunMax } from "../../../server/connector/forwarding/refusal.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const total = 1_000;
/** The first event, one in the middle, and the last: a poison event at the tail must not leave the alarm up. */
const poisonSeqs = [1, 500, 1_000];
const titleOf = (n: number) => (poisonSeqs.includes(n) ? "poison" : `event ${n}`);

/** `total` events in a real outbox, forwarded through `target` with the production batch size; proposals apply to the outbox. */
function forwarding(target: ForwardTarget) {
  const forwarding = outboxForwarding({ events: total, target, eventOf: (n) => ({ ...emptyOprEvent(), title: titleOf(n) }) });
  cleanups.push(() => forwarding.forwarder.stop());
  return forwarding;
}

/** A receiver that answers `refusal` (status and text) when it has one for the list, 200 otherwise; it records the size of every list and what it took. */
function receiver(titlesOf: (body: string) => string[], refusal: (titles: string[]) => { status: number; text: string } | null) {
  const delivered: string[][] = [];
  const sizes: number[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (request) => {
      const titles = titlesOf(await request.text());
      sizes.push(titles.length);
      const refused = refusal(titles);
      if (refused !== null) return new Response(refused.text, { status: refused.status });
      delivered.push(titles);
      return Response.json({ ok: true });
    },
  });
  cleanups.push(() => server.stop(true));
  return { delivered, sizes, posts: () => sizes.length, url: `http://127.0.0.1:${server.port}` };
}

const omiTitles = (xml: string) => [...xml.matchAll(/<title>([^<]*)<\/title>/g)].map((m) => m[1]!);
const webhookTitles = (json: string) => (JSON.parse(json) as { events: Array<{ event: { title: string } }> }).events.map((e) => e.event.title);
const poisonRefused = (titles: string[]) => (titles.includes("poison") ? { status: 400, text: "event_list rejected: an event titled poison is not acceptable" } : null);

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

const targets: Array<[string, (url: string) => ForwardTarget, (body: string) => string[]]> = [
  ["OMi", (url) => new OmiForwardTarget({ baseUrl: url, timeoutMs: 2_000 }), omiTitles],
  ["webhook", (url) => new WebhookForwardTarget({ packageName: "pkg", target: { url, headers: {}, timeoutMs: 2_000 }, problem: null }), webhookTitles],
];

for (const [name, makeTarget, titlesOf] of targets) {
  test(`${name}: 1,000 events with 3 poison ones refused with 400: the 997 others arrive once, in order; the 3 are dead letters; the alarm clears`, async () => {
    const hook = receiver(titlesOf, poisonRefused);
    const { forwarder, outbox, cursor } = forwarding(makeTarget(hook.url));
    forwarder.start();
    await until(() => cursor() === total);
    const expected = Array.from({ length: total }, (_, i) => i + 1).filter((n) => !poisonSeqs.includes(n)).map((n) => `event ${n}`);
    expect(hook.delivered.flat()).toEqual(expected);
    const letters = outbox.deadLetters("pkg", 0, 100);
    expect(letters.map((d) => [d.seq, d.event.title, d.reason.status])).toEqual(poisonSeqs.map((seq) => [seq, "poison", 400]));
    expect(letters[0]!.reason.message).toBe("HTTP 400: event_list rejected: an event titled poison is not acceptable");
    expect(outbox.deadLetterStatus()[0]).toMatchObject({ deadLetters: 3, deadLettersDropped: 0 });
    expect(outbox.status()[0]).toMatchObject({ backlog: 0, cursor: total });
    expect(forwarder.status()).toMatchObject({ alarm: null, delivered: total - poisonSeqs.length, deadLettered: 3 });
    // Bisecting costs about log2(batch) refusals per poison event, not one POST per event.
    expect(hook.posts()).toBeLessThan(100);
  });
}

test("a receiver that refuses the credentials (401): nothing is bisected or dead-lettered, the alarm stays, every attempt carries the whole batch", async () => {
  const hook = receiver(omiTitles, () => ({ status: 401, text: "bad credentials" }));
  const { forwarder, outbox } = forwarding(new OmiForwardTarget({ baseUrl: hook.url, timeoutMs: 2_000 }));
  forwarder.start();
  await until(() => hook.posts() >= 3);
  expect(outbox.deadLetterStatus()[0]).toMatchObject({ deadLetters: 0, deadLettersDropped: 0 });
  expect(outbox.status()[0]).toMatchObject({ backlog: total, cursor: 0 });
  expect(forwarder.status().alarm).toContain("the omi target refused a batch of 1000 (seq 1..1000): HTTP 401: bad credentials");
  expect(forwarder.status()).toMatchObject({ batchEventsMax: forwardingLimits.batchEventsMax, deadLettered: 0 });
  expect(hook.delivered).toEqual([]);
  expect(hook.sizes.every((size) => size === total)).toBe(true);
});

test("a content refusal of a batch that later goes through whole: the size comes back, nothing is dead-lettered", async () => {
  let refusals = 1;
  const hook = receiver(webhookTitles, () => (refusals-- > 0 ? { status: 413, text: "too large" } : null));
  const { forwarder, outbox, cursor } = forwarding(new WebhookForwardTarget({ packageName: "pkg", target: { url: hook.url, headers: {}, timeoutMs: 2_000 }, problem: null }));
  forwarder.start();
  await until(() => cursor() === total);
  expect(hook.delivered.map((titles) => titles.length)).toEqual([500, 500]);
  expect(outbox.deadLetterStatus()[0]).toMatchObject({ deadLetters: 0 });
  expect(forwarder.status()).toMatchObject({ alarm: null, batchEventsMax: forwardingLimits.batchEventsMax });
});

test("a receiver that answers 400 to everything (a misconfigured endpoint): after a short run of dead letters it is taken for a target problem; nothing more is dead-lettered, the alarm says why", async () => {
  const hook = receiver(omiTitles, () => ({ status: 400, text: "bad request" }));
  const { forwarder, outbox } = forwarding(new OmiForwardTarget({ baseUrl: hook.url, timeoutMs: 2_000 }));
  forwarder.start();
  await until(() => (forwarder.status().alarm ?? "").includes("seems to refuse everything"));
  const posts = hook.posts();
  await until(() => hook.posts() >= posts + 2); // it keeps trying, with backoff
  expect(outbox.deadLetterStatus()[0]).toMatchObject({ deadLetters: poisonRunMax });
  expect(outbox.status()[0]).toMatchObject({ backlog: total - poisonRunMax, cursor: poisonRunMax });
  expect(hook.delivered).toEqual([]);
});
