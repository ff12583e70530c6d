/** The replicated event outbox (server/state/outbox.ts) and its durable form. */
import { afterAll, describe, expect, test } from "bun:test";
import { Outbox, type OutboxOp } from "../../server/state/outbox.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { encodeCommand, type Command } from "../../server/state/command-codec.ts";
import { emptyOprEvent } from "../../server/connector/events/event-record.ts";
import { encodeOprEvent } from "../../server/connector/events/event-codec.ts";
import type { SqlStatement } from "../../server/storage/sql-writer.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";

afterAll(cleanupAll);

const ev = (title: string) => ({ ...emptyOprEvent(), title });
const holders = { holders: new Map([["pkg", { node: "n1", epoch: 3 }]]), deployed: new Set(["pkg"]) };
const accept = (titles: string[], keys: Array<string | null> = titles.map(() => null), requestKey: string | null = null): OutboxOp => ({
  op: "accept",
  package: "pkg",
  atMs: 1000,
  requestKey,
  eventKeys: keys,
  events: titles.map(ev),
});

describe("Outbox", () => {
  test("accepts in order with ids from the log index; an Idempotency-Key or a source_event_id seen before gets its old ids", () => {
    const box = new Outbox();
    expect(box.apply(accept(["a", "b"], ["s1", null], "req-1"), 10, holders)).toEqual({ ok: true, ids: ["10.0", "10.1"], duplicates: 0 });
    expect(box.apply(accept(["a", "b"], ["s1", null], "req-1"), 11, holders)).toEqual({ ok: true, ids: ["10.0", "10.1"], duplicates: 2 });
    expect(box.apply(accept(["a again", "c"], ["s1", "s2"]), 12, holders)).toEqual({ ok: true, ids: ["10.0", "12.1"], duplicates: 1 });
    expect(box.pending("pkg", 0, 10).map((e) => [e.seq, e.event.title])).toEqual([[1, "a"], [2, "b"], [3, "c"]]);
  });

  test("the cursor moves only under the current epoch and only forward; delivered events leave", () => {
    const box = new Outbox();
    box.apply(accept(["a", "b", "c"]), 1, holders);
    expect(box.apply({ op: "forwarded", package: "pkg", epoch: 2, through: 2 }, 2, holders).ok).toBe(false);
    expect(box.apply({ op: "forwarded", package: "pkg", epoch: 3, through: 9 }, 3, holders).ok).toBe(false);
    expect(box.apply({ op: "forwarded", package: "pkg", epoch: 3, through: 2 }, 4, holders).ok).toBe(true);
    expect(box.apply({ op: "forwarded", package: "pkg", epoch: 3, through: 1 }, 5, holders).ok).toBe(true); // behind: no-op
    expect(box.pending("pkg", 0, 10).map((e) => e.event.title)).toEqual(["c"]);
    expect(box.status()).toEqual([{ package: "pkg", backlog: 1, cursor: 2, oldestAcceptedAtMs: 1000 }]);
  });

  test("a full outbox refuses the whole batch; a package not deployed accepts nothing", () => {
    const box = new Outbox(100);
    const many = Array.from({ length: 100 }, (_, i) => `e${i}`);
    expect(box.apply(accept(many), 1, holders).ok).toBe(true);
    const refused = box.apply(accept(["one more"]), 2, holders);
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error).toContain("outbox full");
    expect(box.status()[0]!.backlog).toBe(100);
    const undeployed = box.apply(accept(["x"]), 3, { ...holders, deployed: new Set() });
    expect(!undeployed.ok && undeployed.error).toContain("not deployed");
  });
});

const batch = (segments: Array<{ titles: string[]; requestKey?: string }>): OutboxOp => ({
  op: "accept-batch",
  batch: { package: "pkg", atMs: 2000, segments: segments.map((s) => ({ requestKey: s.requestKey ?? null, eventKeys: s.titles.map(() => null), events: s.titles.map((t) => encodeOprEvent(ev(t))) })) },
});

describe("Outbox accept batches (many requests in one entry)", () => {
  test("each request gets its own ids, numbered by position in the entry; a repeated Idempotency-Key inside one entry gets the first one's ids", () => {
    const box = new Outbox();
    const result = box.apply(batch([{ titles: ["a", "b"], requestKey: "k" }, { titles: ["c"] }, { titles: ["a", "b"], requestKey: "k" }]), 7, holders);
    expect(result).toEqual({ ok: true, segments: [{ ok: true, ids: ["7.0", "7.1"], duplicates: 0 }, { ok: true, ids: ["7.2"], duplicates: 0 }, { ok: true, ids: ["7.0", "7.1"], duplicates: 2 }] });
    expect(box.pending("pkg", 0, 10).map((e) => [e.seq, e.id, e.event.title])).toEqual([[1, "7.0", "a"], [2, "7.1", "b"], [3, "7.2", "c"]]);
    expect(box.takeResult(7)).toEqual(result);
    expect(box.takeResult(7)).toBeUndefined();
  });

  test("a request that does not fit the budget is refused alone; its neighbours in the entry are accepted", () => {
    const box = new Outbox(3);
    const result = box.apply(batch([{ titles: ["a"] }, { titles: ["b", "c", "d"] }, { titles: ["e", "f"] }]), 1, holders);
    expect(result.ok && "segments" in result && result.segments.map((s) => s.ok)).toEqual([true, false, true]);
    expect(box.pending("pkg", 0, 10).map((e) => e.event.title)).toEqual(["a", "e", "f"]);
  });

  test("a package that is not deployed refuses the whole entry", () => {
    const refused = new Outbox().apply(batch([{ titles: ["a"] }]), 1, { ...holders, deployed: new Set() });
    expect(refused.ok).toBe(false);
  });
});

describe("Outbox durable form", () => {
  test("flushed rows reload to the same outbox and dedup window (a restarted node decides alike); snapshots carry it", async () => {
    const open = await openDatabase(tempDir());
    const state = new ReplicatedState();
    await state.load(open.client, { applied: 0, compactedThrough: 0 });
    let index = 0;
    const apply = (command: Command) => state.apply([{ index: ++index, term: 1, type: "normal", data: encodeCommand(command) }]).results[0]!;
    apply({ kind: "member-set", nodeId: "n1", address: "a:1" });
    const model = {
      apiVersion: "opsconn/v1",
      connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "a:1" }] },
      policies: [{ name: "l", type: "event-listener", path: "x", inputFormat: "json" }],
      packages: [{ name: "pkg", policies: ["l"] }],
      aspects: [{ name: "a", ciType: "Running Software", packages: ["pkg"] }],
      templates: [{ name: "t", ciType: "Operations Connector System", aspects: ["a"] }],
    };
    expect(apply({ kind: "config", op: { op: "put-model", document: model } }).ok).toBe(true);
    expect(apply({ kind: "config", op: { op: "deploy", template: "t", atMs: 1 } }).ok).toBe(true);
    apply({ kind: "config", op: { op: "assign", basisIndex: 0, changes: [{ package: "pkg", node: "n1", epoch: 1 }] } });
    expect(apply({ kind: "outbox", op: accept(["a", "b", "c"], ["s1", "s2", "s3"], "r1") }).ok).toBe(true);
    expect(apply({ kind: "outbox", op: { op: "forwarded", package: "pkg", epoch: 1, through: 1 } }).ok).toBe(true);
    const statements: SqlStatement[] = [];
    state.flush(statements, { compactedThrough: 0 });
    await open.writer.commit(statements, { durable: true });

    const again = new ReplicatedState();
    await again.load(open.client, { applied: index, compactedThrough: 0 });
    expect(again.outbox.toRows()).toEqual(state.outbox.toRows());
    // The same next op gives the same outcome on the restarted node and on the one that kept running.
    const next: OutboxOp = accept(["a", "d"], ["s1", "s4"]);
    const context = (s: ReplicatedState) => ({ holders: s.config.assignments, deployed: new Set(s.config.current?.packages ?? []) });
    expect(again.outbox.apply(next, 99, context(again))).toEqual(state.outbox.apply(next, 99, context(state)));

    const follower = new ReplicatedState();
    follower.restore(state.snapshot(), index);
    expect(follower.outbox.toRows()).toEqual(state.outbox.toRows());
    open.close();
  });

  test("rows written by an earlier build (JSON documents) load after the upgrade migration and forward the same events", async () => {
    const open = await openDatabase(tempDir());
    const legacy = { seq: 5, id: "40.0", acceptedAtMs: 123, event: { ...ev("from the old build"), key: "k1", custom_attributes: { a: "1" } } };
    await open.client.execute({ sql: "INSERT INTO outbox_packages (package, next_seq, cursor) VALUES ('pkg', 6, 4)", args: [] });
    await open.client.execute({ sql: "INSERT INTO outbox_events (package, seq, document) VALUES ('pkg', 5, ?)", args: [JSON.stringify(legacy)] });
    const state = new ReplicatedState();
    await state.load(open.client, { applied: 0, compactedThrough: 0 });
    const [entry] = state.outbox.pending("pkg", 4, 10);
    expect({ ...entry!, event: { ...entry!.event, custom_attributes: { ...entry!.event.custom_attributes } } }).toEqual(legacy);
    // Snapshots carry it in the binary form from then on.
    const follower = new ReplicatedState();
    follower.restore(state.snapshot(), 0);
    expect(follower.outbox.pending("pkg", 4, 10).map((e) => e.id)).toEqual(["40.0"]);
    open.close();
  });
});
