/** The replicated event outbox (server/state/outbox.ts) and its durable form. */
import { afterAll, describe, expect, test } from "bun:test";
import { Outbox } from "../../server/state/outbox.ts";
import type { OutboxOp } from "../../server/state/outbox-types.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { encodeCommand, type Command } from "../../server/state/command-codec.ts";
import { emptyOprEvent } from "../../server/connector/events/event-record.ts";
import { encodeOprEvent } from "../../server/connector/events/event-codec.ts";
import type { SqlStatement } from "../../server/storage/sql-writer.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { LibsqlLogStore } from "../../server/storage/libsql-log-store.ts";
import type { Entry } from "../../server/raft/types.ts";
import { seededRng } from "../../server/raft/prng.ts";
import { onePackageDeployed } from "../support/one-package.ts";
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
    expect(box.status()).toEqual([{ package: "pkg", backlog: 1, backlogBytes: encodeOprEvent(ev("c")).length, cursor: 2, oldestAcceptedAtMs: 1000 }]);
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

  test("the package's disk budget (bytes of undelivered events) refuses what does not fit and frees what is delivered", () => {
    const box = new Outbox();
    const size = encodeOprEvent(ev("a")).length;
    const budget = { ...holders, budgetBytes: new Map([["pkg", 3 * size]]) };
    const first = box.apply(batch([{ titles: ["a", "b"] }, { titles: ["c", "d"] }, { titles: ["e"] }]), 1, budget);
    expect(first.ok && "segments" in first && first.segments.map((s) => s.ok)).toEqual([true, false, true]);
    expect(box.status()[0]).toMatchObject({ backlog: 3, backlogBytes: 3 * size });
    const full = box.apply(batch([{ titles: ["f"] }]), 2, budget);
    expect(full.ok && "segments" in full && !full.segments[0]!.ok && full.segments[0]!.error).toContain(`${3 * size} bytes (budget 1000000 events, ${3 * size} bytes)`);
    expect(box.apply({ op: "forwarded", package: "pkg", epoch: 3, through: 2 }, 3, budget).ok).toBe(true);
    expect(box.status()[0]).toMatchObject({ backlog: 1, backlogBytes: size });
    const after = box.apply(batch([{ titles: ["g", "h"] }]), 4, budget);
    expect(after.ok && "segments" in after && after.segments[0]!.ok).toBe(true);
  });

  test("events held per entry: ids and bytes stay right across gaps in positions, a cursor and a dead letter inside a chunk, and a reload from rows", () => {
    const box = new Outbox(6);
    const keyed = (titles: string[], keys: Array<string | null>) => ({ requestKey: null, eventKeys: keys, events: titles.map((t) => encodeOprEvent(ev(t))) });
    box.apply({ op: "accept-batch", batch: { package: "pkg", atMs: 5, segments: [keyed(["a"], ["k1"])] } }, 3, holders);
    // Position 1 repeats k1 (not stored), segment 2 does not fit the 6-event bound (refused alone): runs 0, 2-3 and 7-8.
    const result = box.apply({ op: "accept-batch", batch: { package: "pkg", atMs: 9, segments: [keyed(["b", "a again", "c", "d"], [null, "k1", null, null]), keyed(["x", "y", "z"], [null, null, null]), keyed(["e", "f"], [null, null])] } }, 4, holders);
    expect(result.ok && "segments" in result && result.segments.map((s) => (s.ok ? s.ids : s.error.slice(0, 11)))).toEqual([["4.0", "3.0", "4.2", "4.3"], "outbox full", ["4.7", "4.8"]]);
    const view = (b: Outbox) => b.pending("pkg", 0, 100).map((e) => [e.seq, e.id, e.acceptedAtMs, e.event.title]);
    expect(view(box)).toEqual([[1, "3.0", 5, "a"], [2, "4.0", 9, "b"], [3, "4.2", 9, "c"], [4, "4.3", 9, "d"], [5, "4.7", 9, "e"], [6, "4.8", 9, "f"]]);
    const size = encodeOprEvent(ev("a")).length;
    expect(box.status()[0]).toMatchObject({ backlog: 6, backlogBytes: 6 * size });
    expect(box.apply({ op: "forwarded", package: "pkg", epoch: 3, through: 2 }, 5, holders).ok).toBe(true);
    expect(box.apply({ op: "dead-letter", package: "pkg", epoch: 3, seq: 3, atMs: 1, reason: { status: 400, message: "no" } }, 6, holders)).toEqual({ ok: true, ids: ["4.2"], duplicates: 0 });
    expect(box.pending("pkg", 4, 1).map((e) => e.id)).toEqual(["4.7"]);
    expect(box.pending("pkg", 0, 100, 2 * size).map((e) => e.id)).toEqual(["4.3", "4.7"]);
    expect(box.status()[0]).toMatchObject({ backlog: 3, backlogBytes: 3 * size, cursor: 3, oldestAcceptedAtMs: 9 });
    const again = new Outbox(6);
    again.load(box.toRows());
    expect(view(again)).toEqual(view(box));
    expect(again.status()).toEqual(box.status());
    // The bound counts held events only: three more fit, a fourth does not.
    expect(again.apply(batch([{ titles: ["g", "h", "i"] }]), 7, holders)).toMatchObject({ ok: true, segments: [{ ok: true }] });
    expect(again.apply(batch([{ titles: ["j"] }]), 8, holders)).toMatchObject({ ok: true, segments: [{ ok: false }] });
  });

  test("a package that is not deployed refuses the whole entry", () => {
    const refused = new Outbox().apply(batch([{ titles: ["a"] }]), 1, { ...holders, deployed: new Set() });
    expect(refused.ok).toBe(false);
  });
});

describe("Outbox durable form", () => {
  test("flushed rows reload to the same outbox and dedup window (a restarted node decides alike); snapshots carry it", async () => {
    const open = await openDatabase(tempDir());
    const store = new LibsqlLogStore(open);
    await store.load();
    const state = new ReplicatedState();
    await state.load(open.client, { applied: 0, compactedThrough: 0 });
    let index = 0;
    const saved: Entry[] = [];
    const apply = (command: Command) => {
      const entry: Entry = { index: ++index, term: 1, type: "normal", data: encodeCommand(command) };
      saved.push(entry);
      return state.apply([entry]).results[0]!;
    };
    for (const command of onePackageDeployed()) expect(apply(command).ok).toBe(true);
    expect(apply({ kind: "outbox", op: accept(["a", "b", "c"], ["s1", "s2", "s3"], "r1") }).ok).toBe(true);
    expect(apply({ kind: "outbox", op: { op: "forwarded", package: "pkg", epoch: 1, through: 1 } }).ok).toBe(true);
    await store.save({ hardState: { term: 1, votedFor: null, commit: index }, entries: saved, snapshot: null });
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
    expect({ seq: entry!.seq, id: entry!.id, acceptedAtMs: entry!.acceptedAtMs, event: { ...entry!.event, custom_attributes: { ...entry!.event.custom_attributes } } }).toEqual(legacy);
    // Snapshots carry it in the binary form from then on.
    const follower = new ReplicatedState();
    follower.restore(state.snapshot(), 0);
    expect(follower.outbox.pending("pkg", 4, 10).map((e) => e.id)).toEqual(["40.0"]);
    open.close();
  });

  test("undelivered events are written once: as runs into their log entries, kept past the compaction point up to a byte bound, as rows beyond it (a few per flush, the entry kept meanwhile); reboots at every step agree with a node that never stopped", async () => {
    // [seed, events moved per flush, log bytes kept for runs]: 0 kept moves them at once; 2 per flush
    // leaves runs behind for later flushes, across reboots; a huge bound never moves any; 400 some.
    const variants = [[1, 20_000, 0], [2, 20_000, 0], [3, 2, 0], [4, 2, 0], [5, 20_000, 1 << 30], [6, 20_000, 1 << 30], [7, 2, 400], [8, 20_000, 400]] as const;
    for (const [seed, materializeEventsMax, retainedLogBytesMax] of variants) {
      const rng = seededRng(seed);
      const int = (n: number) => rng.nextInt(n);
      const open = await openDatabase(tempDir());
      const store = new LibsqlLogStore(open);
      await store.load();
      let node = new ReplicatedState(undefined, materializeEventsMax, retainedLogBytesMax);
      await node.load(open.client, { applied: 0, compactedThrough: 0 });
      let leftBehind = false;
      const reference = new ReplicatedState(); // applies the same entries, never flushes or reboots
      let index = 0;
      let compactedThrough = 0;
      let maxRuns = 0;
      let maxRows = 0;
      const commit = async (command: Command) => {
        const entry: Entry = { index: ++index, term: 1, type: "normal", data: encodeCommand(command) };
        await store.save({ hardState: { term: 1, votedFor: null, commit: index }, entries: [entry], snapshot: null });
        const [mine, theirs] = [node.apply([entry]).results[0], reference.apply([entry]).results[0]];
        expect(mine).toEqual(theirs!);
      };
      for (const command of onePackageDeployed()) await commit(command);
      for (let step = 0; step < 120; step++) {
        const roll = int(10);
        if (roll < 5) {
          // Requests with some repeated source ids (dedup gaps split runs) and Idempotency-Keys.
          const segments = Array.from({ length: 1 + int(3) }, () => {
            const count = 1 + int(4);
            return { requestKey: int(4) === 0 ? `r${int(6)}` : null, eventKeys: Array.from({ length: count }, () => (int(3) === 0 ? `s${int(10)}` : null)), events: Array.from({ length: count }, () => encodeOprEvent(ev(`e${step}.${int(1000)}`))) };
          });
          await commit({ kind: "outbox", op: { op: "accept-batch", batch: { package: "pkg", atMs: step, segments } } });
        } else if (roll < 7) {
          const last = reference.outbox.lastSeq("pkg");
          const cursor = reference.outbox.status().find((o) => o.package === "pkg")?.cursor ?? 0;
          if (last > cursor) await commit({ kind: "outbox", op: { op: "forwarded", package: "pkg", epoch: 1, through: cursor + 1 + int(last - cursor) } });
        } else if (roll < 9) {
          // A flush, sometimes with the compaction point moved up to the applied index.
          if (int(2) === 0) compactedThrough = Math.max(compactedThrough, index - int(5));
          const statements: SqlStatement[] = [];
          node.flush(statements, { compactedThrough });
          await store.commit([...statements, store.appliedStatement(node.applied)], { durable: true });
          const runs = Number((await open.client.execute("SELECT count(*) AS n FROM outbox_runs")).rows[0]!["n"]);
          const rows = Number((await open.client.execute("SELECT count(*) AS n FROM outbox_events")).rows[0]!["n"]);
          maxRuns = Math.max(maxRuns, runs);
          maxRows = Math.max(maxRows, rows);
          // No run points at a deleted entry.
          const orphans = await open.client.execute("SELECT count(*) AS n FROM outbox_runs WHERE log_index NOT IN (SELECT idx FROM raft_entries)");
          expect(Number(orphans.rows[0]!["n"])).toBe(0);
          leftBehind ||= node.outbox.lowestRunIndex() <= compactedThrough;
        } else {
          // Reboot from the file: tables at the flushed index, then the entries after it.
          const flushed = node.flushed;
          node = new ReplicatedState(undefined, materializeEventsMax, retainedLogBytesMax);
          await node.load(open.client, { applied: flushed, compactedThrough: Math.min(compactedThrough, flushed) });
          const after = await open.client.execute({ sql: "SELECT idx, term, type, data FROM raft_entries WHERE idx > ? ORDER BY idx", args: [flushed] });
          node.apply(after.rows.map((r) => ({ index: Number(r["idx"]), term: 1, type: "normal" as const, data: new Uint8Array(r["data"] as ArrayBuffer) })));
        }
        const view = (s: ReplicatedState) => [s.outbox.pending("pkg", 0, 100_000).map((e) => [e.seq, e.id, e.event.title]), s.outbox.status()];
        expect(view(node)).toEqual(view(reference));
      }
      // The ways of keeping an undelivered event each variant is for were exercised: rows only once
      // the kept log passes its bound, and compacted runs left behind (their entries kept).
      const moves = retainedLogBytesMax < 1 << 30;
      expect({ seed, runs: maxRuns > 0, rows: maxRows > 0 }).toEqual({ seed, runs: true, rows: moves });
      if (materializeEventsMax === 2 || retainedLogBytesMax > 0) expect({ seed, leftBehind }).toEqual({ seed, leftBehind: true });
      open.close();
    }
  });
});
