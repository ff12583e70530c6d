/** The holder's forwarder with a fake group (server/connector/forwarding/event-forwarder.ts). */
import { expect, test } from "bun:test";
import { EventForwarder } from "../../../server/connector/forwarding/event-forwarder.ts";
import { OmiForwardTarget } from "../../../server/connector/forwarding/omi-sender.ts";
import { Outbox } from "../../../server/state/outbox.ts";
import { emptyOprEvent } from "../../../server/connector/events/event-record.ts";
import { Logger } from "../../../server/log/logger.ts";

const log = new Logger({ node: "n1", level: "error", pretty: false, sink: { write: () => {} } });

function setup(propose: () => Promise<unknown>) {
  const outbox = new Outbox();
  const context = { holders: new Map([["pkg", { node: "n1", epoch: 1 }]]), deployed: new Set(["pkg"]) };
  outbox.apply({ op: "accept", package: "pkg", atMs: 1, requestKey: null, eventKeys: [null, null], events: [{ ...emptyOprEvent(), title: "a" }, { ...emptyOprEvent(), title: "b" }] }, 1, context);
  let posts = 0;
  const omi = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: async (r) => (await r.text(), posts++, Response.json({ ids: [] })) });
  const forwarder = new EventForwarder({
    packageName: "pkg",
    epoch: 1,
    mayAct: () => true,
    group: { propose, waitApplied: async () => {} } as never,
    state: { outbox } as never,
    target: new OmiForwardTarget({ baseUrl: `http://127.0.0.1:${omi.port}`, timeoutMs: 1000 }),
    log,
  });
  return { forwarder, omi, posts: () => posts, outbox, context };
}

test("a cursor move that fails is retried with backoff, without sending the batch again", async () => {
  const { forwarder, omi, posts } = setup(async () => {
    throw new Error("proposal dropped");
  });
  forwarder.start();
  await Bun.sleep(400);
  forwarder.stop();
  omi.stop(true);
  expect(posts()).toBe(1);
  expect(forwarder.status().lastError).toContain("proposal dropped");
});

test("a stale epoch stops the forwarder: a newer holder owns the package", async () => {
  const { forwarder, omi, posts } = setup(async () => ({ index: 2, result: { index: 2, ok: false, error: "stale epoch 1 for package pkg (current 2)" } }));
  forwarder.start();
  await Bun.sleep(300);
  omi.stop(true);
  expect(posts()).toBe(1);
  expect(forwarder.status().lastError).toContain("stale epoch");
});
