/** Dead letters in the replicated outbox (server/state/outbox.ts): the op, the bound, requeue, and the durable forms. */
import { afterAll, describe, expect, test } from "bun:test";
import { Outbox } from "../../server/state/outbox.ts";
import type { OutboxContext, OutboxOp } from "../../server/state/outbox-types.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { decodeCommand, encodeCommand, type Command } from "../../server/state/command-codec.ts";
import { BinaryDecodeError, ByteWriter } from "../../server/state/binary.ts";
import { emptyOprEvent } from "../../server/connector/events/event-record.ts";
import { encodeOprEvent } from "../../server/connector/events/event-codec.ts";
import type { SqlStatement } from "../../server/storage/sql-writer.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { LibsqlLogStore } from "../../server/storage/libsql-log-store.ts";
import type { Entry } from "../../server/raft/types.ts";
import { seededRng } from "../../server/raft/prng.ts";
import { deadLetterLimits } from "../../server/constants.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";
import { onePackageDeployed } from "../support/one-package.ts";

afterAll(cleanupAll);

const ev = (title: string) => ({ ...emptyOprEvent(), title });
const context: OutboxContext = { holders: new Map([["pkg", { node: "n1", epoch: 3 }]]), deployed: new Set(["pkg"]) };
const accept = (titles: string[]): OutboxOp => ({
  op: "accept-batch",
  batch: { package: "pkg", atMs: 1000, segments: [{ requestKey: null, eventKeys: titles.map(() => null), events: titles.map((t) => encodeOprEvent(ev(t))) }] },
});
const reason = (seq: number) => ({ status: 400, message: `HTTP 400: event ${seq} is unacceptable` });
const deadLetter = (seq: number, epoch = 3): OutboxOp => ({ op: "dead-letter", package: "pkg", epoch, seq, atMs: 5000 + seq, reason: reason(seq) });
const requeue = (seqs: number[] | "all", pkg = "pkg"): OutboxOp => ({ op: "requeue", package: pkg, atMs: 9000, seqs });
const titles = (box: Outbox) => box.pending("pkg", 0, 100).map((e) => [e.seq, e.id, e.event.title]);
const letters = (box: Outbox) => box.deadLetters("pkg", 0, 100).map((d) => [d.seq, d.id, d.event.title]);
const errorOf = (result: { ok: boolean; error?: string }) => (result.ok ? "ok" : result.error);

describe("the dead-letter op", () => {
  test("only the holder's current epoch moves an event, and only the first undelivered one; the cursor steps over it", () => {
    const box = new Outbox();
    box.apply(accept(["a", "b", "c"]), 1, context);
    const size = encodeOprEvent(ev("a")).length;
    expect(errorOf(box.apply(deadLetter(1, 2), 2, context))).toBe("stale epoch 2 for package pkg (current 3)");
    expect(errorOf(box.apply({ ...deadLetter(1), package: "other" } as OutboxOp, 3, context))).toContain("stale epoch 3 for package other (current none)");
    expect(errorOf(box.apply(deadLetter(2), 4, context))).toBe("seq 2 is not the first undelivered event of package pkg (cursor 0); nothing was moved");
    expect(box.apply(deadLetter(1), 5, context)).toEqual({ ok: true, ids: ["1.0"], duplicates: 0 });
    expect(box.status()).toEqual([{ package: "pkg", backlog: 2, backlogBytes: 2 * size, cursor: 1, oldestAcceptedAtMs: 1000 }]);
    expect(titles(box)).toEqual([[2, "1.1", "b"], [3, "1.2", "c"]]);
    expect(box.deadLetters("pkg", 0, 10)).toEqual([{ seq: 1, id: "1.0", acceptedAtMs: 1000, event: ev("a"), reason: reason(1), index: 5, atMs: 5001 }]);
    // Moved once: the same op again (a retried proposal) finds another head.
    expect(errorOf(box.apply(deadLetter(1), 6, context))).toContain("seq 1 is not the first undelivered event of package pkg (cursor 1)");
    expect(box.apply({ op: "forwarded", package: "pkg", epoch: 3, through: 2 }, 7, context).ok).toBe(true);
    expect(box.apply(deadLetter(3), 8, context).ok).toBe(true);
    expect(errorOf(box.apply(deadLetter(4), 9, context))).toContain("seq 4 is not the first undelivered event of package pkg (cursor 3)");
    expect(box.status()[0]).toMatchObject({ backlog: 0, backlogBytes: 0, cursor: 3 });
    expect(box.deadLetterStatus()).toEqual([{ package: "pkg", deadLetters: 2, deadLetterBytes: 2 * size, deadLettersDropped: 0, lastDeadLetter: { seq: 3, reason: reason(3), atMs: 5003 } }]);
  });

  test("a reason longer than the bound is refused (deterministically), nothing moves", () => {
    const box = new Outbox();
    box.apply(accept(["a"]), 1, context);
    const long: OutboxOp = { op: "dead-letter", package: "pkg", epoch: 3, seq: 1, atMs: 1, reason: { status: 400, message: "x".repeat(deadLetterLimits.reasonCharsMax + 1) } };
    expect(errorOf(box.apply(long, 2, context))).toContain(`reason exceeds ${deadLetterLimits.reasonCharsMax} characters`);
    expect(box.status()[0]).toMatchObject({ backlog: 1, cursor: 0 });
  });

  test("the list is bounded: past it the oldest dead letters go, counted in deadLettersDropped", () => {
    const box = new Outbox(undefined, { deadLettersPerPackageMax: 3 });
    box.apply(accept(["a", "b", "c", "d", "e"]), 1, context);
    for (let seq = 1; seq <= 5; seq++) expect(box.apply(deadLetter(seq), 1 + seq, context).ok).toBe(true);
    expect(letters(box)).toEqual([[3, "1.2", "c"], [4, "1.3", "d"], [5, "1.4", "e"]]);
    expect(box.deadLetterStatus()[0]).toMatchObject({ deadLetters: 3, deadLettersDropped: 2 });
    // Pages follow the seqs.
    expect(box.deadLetters("pkg", 3, 1).map((d) => d.seq)).toEqual([4]);
    expect(box.deadLetters("pkg", 5, 10)).toEqual([]);
  });

  test("the list is bounded in bytes too (events run to about 1 MB): the oldest go, counted; the newest always stays", () => {
    const size = encodeOprEvent(ev("a")).length;
    const box = new Outbox(undefined, { deadLetterBytesMax: 2 * size });
    box.apply(accept(["a", "b", "c"]), 1, context);
    box.apply({ op: "accept-batch", batch: { package: "pkg", atMs: 1000, segments: [{ requestKey: null, eventKeys: [null], events: [encodeOprEvent({ ...ev("huge"), description: "x".repeat(10 * size) })] }] } }, 2, context);
    for (let seq = 1; seq <= 3; seq++) box.apply(deadLetter(seq), 2 + seq, context);
    expect(letters(box)).toEqual([[2, "1.1", "b"], [3, "1.2", "c"]]);
    expect(box.deadLetterStatus()[0]).toMatchObject({ deadLetters: 2, deadLetterBytes: 2 * size, deadLettersDropped: 1 });
    box.apply(deadLetter(4), 6, context);
    expect(letters(box)).toEqual([[4, "2.0", "huge"]]);
    expect(box.deadLetterStatus()[0]).toMatchObject({ deadLetters: 1, deadLettersDropped: 3 });
    // A requeue frees the bytes it takes back.
    expect(box.apply(requeue("all"), 7, context).ok).toBe(true);
    expect(box.deadLetterStatus()[0]).toMatchObject({ deadLetters: 0, deadLetterBytes: 0 });
  });
});

describe("requeue", () => {
  test("dead letters go back at the end of the outbox as new events (new seqs and ids), in seq order", () => {
    const box = new Outbox();
    box.apply(accept(["a", "b", "c", "d"]), 1, context);
    box.apply(deadLetter(1), 2, context);
    box.apply(deadLetter(2), 3, context);
    expect(box.apply(requeue([2]), 9, context)).toEqual({ ok: true, requeued: [{ from: 2, seq: 5, id: "9.0" }] });
    expect(titles(box)).toEqual([[3, "1.2", "c"], [4, "1.3", "d"], [5, "9.0", "b"]]);
    expect(box.pending("pkg", 4, 1)[0]!.acceptedAtMs).toBe(9000);
    expect(letters(box)).toEqual([[1, "1.0", "a"]]);
    expect(box.apply(requeue("all"), 10, context)).toEqual({ ok: true, requeued: [{ from: 1, seq: 6, id: "10.0" }] });
    expect(box.deadLetterStatus()[0]).toMatchObject({ deadLetters: 0, lastDeadLetter: null });
    expect(box.apply(requeue("all"), 11, context)).toEqual({ ok: true, requeued: [] });
  });

  test("all or nothing: unknown or repeated seqs, a package not deployed, a full outbox", () => {
    const box = new Outbox(4);
    box.apply(accept(["a", "b", "c", "d"]), 1, context);
    box.apply(deadLetter(1), 2, context);
    box.apply(deadLetter(2), 3, context);
    const before = { pending: titles(box), letters: letters(box) };
    expect(errorOf(box.apply(requeue([1, 7]), 4, context))).toBe("seqs 7 are not dead letters of package pkg (requeued or dropped before?); nothing was requeued");
    expect(errorOf(box.apply(requeue([1, 1]), 5, context))).toContain("appears more than once");
    expect(errorOf(box.apply(requeue("all"), 6, { ...context, deployed: new Set() }))).toBe("package pkg is not deployed (any more); nothing was requeued");
    box.apply(accept(["e", "f"]), 7, context); // 4 undelivered: the budget of this outbox
    expect(errorOf(box.apply(requeue([2]), 8, context))).toContain("outbox full: package pkg holds 4 undelivered events");
    expect({ pending: titles(box).slice(0, 2), letters: letters(box) }).toEqual(before);
  });
});

describe("the ops on the wire (command kind 7, JSON)", () => {
  const ops: OutboxOp[] = [deadLetter(17), requeue([3, 4]), requeue("all")];
  for (const op of ops) test(`round-trips ${JSON.stringify(op)}`, () => expect(decodeCommand(encodeCommand({ kind: "outbox", op }))).toEqual({ kind: "outbox", op }));

  const malformed: Array<[string, unknown]> = [
    ["a dead-letter without a reason", { op: "dead-letter", package: "p", epoch: 1, seq: 1, atMs: 1 }],
    ["a dead-letter with a negative seq", { ...deadLetter(1), seq: -1 }],
    ["a reason whose status is text", { ...deadLetter(1), reason: { status: "400", message: "x" } }],
    ["a requeue of seqs that are not numbers", { op: "requeue", package: "p", atMs: 1, seqs: ["1"] }],
    ["a requeue of neither seqs nor all", { op: "requeue", package: "p", atMs: 1, seqs: "some" }],
  ];
  for (const [name, op] of malformed) {
    test(`rejects ${name}`, () => {
      const data = new ByteWriter(64).u8(1).u8(7).text(JSON.stringify(op)).finish();
      expect(() => decodeCommand(data)).toThrow(BinaryDecodeError);
    });
  }
});

/** A node's state over a real libSQL file, the package deployed and held by n1 at epoch 1. */
async function durableNode() {
  const open = await openDatabase(tempDir());
  const store = new LibsqlLogStore(open);
  await store.load();
  const state = new ReplicatedState();
  await state.load(open.client, { applied: 0, compactedThrough: 0 });
  let index = 0;
  const commit = async (command: Command) => {
    const entry: Entry = { index: ++index, term: 1, type: "normal", data: encodeCommand(command) };
    await store.save({ hardState: { term: 1, votedFor: null, commit: index }, entries: [entry], snapshot: null });
    return state.apply([entry]).results[0]!;
  };
  const flush = async (compactedThrough = 0) => {
    const statements: SqlStatement[] = [];
    state.flush(statements, { compactedThrough });
    await store.commit([...statements, store.appliedStatement(state.applied)], { durable: true });
  };
  const reload = async () => {
    const again = new ReplicatedState();
    await again.load(open.client, { applied: state.applied, compactedThrough: 0 });
    return again;
  };
  for (const command of onePackageDeployed()) await commit(command);
  return { open, store, state, commit, flush, reload, index: () => index, count: async (table: string) => Number((await open.client.execute(`SELECT count(*) AS n FROM ${table}`)).rows[0]!["n"]) };
}

/** Everything a node shows of the package's outbox and dead letters. */
const view = (s: ReplicatedState) => ({
  pending: s.outbox.pending("pkg", 0, 100_000).map((e) => [e.seq, e.id, e.acceptedAtMs, e.event.title]),
  status: s.outbox.status(),
  deadLetters: s.outbox.deadLetters("pkg", 0, deadLetterLimits.pageMax),
  deadLetterStatus: s.outbox.deadLetterStatus(),
  rows: s.outbox.toRows(),
});

describe("the durable forms", () => {
  test("flushed to a libSQL file and reloaded, through a requeue and a snapshot restore, a node shows the same dead letters and outbox", async () => {
    const node = await durableNode();
    const dead = (seq: number) => node.commit({ kind: "outbox", op: { op: "dead-letter", package: "pkg", epoch: 1, seq, atMs: 7000 + seq, reason: reason(seq) } });
    expect((await node.commit({ kind: "outbox", op: accept(["a", "b", "c", "d", "e", "f"]) })).ok).toBe(true);
    expect((await dead(1)).ok).toBe(true);
    expect((await node.commit({ kind: "outbox", op: { op: "forwarded", package: "pkg", epoch: 1, through: 2 } })).ok).toBe(true);
    expect((await dead(3)).ok).toBe(true);
    await node.flush();
    expect(await node.count("outbox_dead_letters")).toBe(2);
    expect(view(await node.reload())).toEqual(view(node.state));

    // Requeued: the dead letter's row goes, the event comes back as a row of the outbox (its log entry holds no event).
    expect((await node.commit({ kind: "outbox", op: requeue([1]) })).ok).toBe(true);
    await node.flush();
    expect(await node.count("outbox_dead_letters")).toBe(1);
    const reloaded = await node.reload();
    expect(view(reloaded)).toEqual(view(node.state));
    expect(reloaded.outbox.pending("pkg", 6, 10).map((e) => e.event.title)).toEqual(["a"]);
    // The same next op gives the same outcome on the reloaded node and on the one that kept running.
    const next: OutboxOp = { op: "dead-letter", package: "pkg", epoch: 1, seq: 4, atMs: 1, reason: reason(4) };
    expect(reloaded.outbox.apply(next, 99, { holders: reloaded.config.assignments, deployed: reloaded.config.deployedPackages })).toEqual(node.state.outbox.apply(next, 99, { holders: node.state.config.assignments, deployed: node.state.config.deployedPackages }));

    // A snapshot (version 5) carries them; the restore's SQL rewrites a fresh node's tables to match.
    const image = node.state.snapshot();
    expect(image[0]).toBe(5);
    // The follower has dead letters of its own, which the snapshot replaces.
    const follower = await durableNode();
    await follower.commit({ kind: "outbox", op: accept(["x", "y"]) });
    for (const seq of [1, 2]) await follower.commit({ kind: "outbox", op: { op: "dead-letter", package: "pkg", epoch: 1, seq, atMs: 1, reason: reason(seq) } });
    await follower.flush();
    expect(await follower.count("outbox_dead_letters")).toBe(2);
    const statements = follower.state.restore(image, node.state.applied);
    expect(view(follower.state)).toEqual(view(node.state));
    await follower.open.writer.commit(statements, { durable: true });
    const rebooted = new ReplicatedState();
    await rebooted.load(follower.open.client, { applied: node.state.applied, compactedThrough: 0 });
    expect(view(rebooted)).toEqual(view(node.state));
    node.open.close();
    follower.open.close();
  });

  test("the bound and its counter survive a flush and a reload: dropped rows are deleted, the count is kept", async () => {
    const open = await openDatabase(tempDir());
    const box = new Outbox(undefined, { deadLettersPerPackageMax: 2 });
    const flush = async () => {
      const statements: SqlStatement[] = [];
      box.flush(statements, 0);
      await open.writer.commit(statements, { durable: true });
    };
    box.apply(accept(["a", "b", "c", "d", "e"]), 1, context);
    box.apply(deadLetter(1), 2, context);
    box.apply(deadLetter(2), 3, context);
    box.apply({ op: "forwarded", package: "pkg", epoch: 3, through: 5 }, 4, context);
    await flush();
    box.apply(accept(["f", "g"]), 5, context);
    box.apply(deadLetter(6), 6, context); // drops seq 1, written: its row must go
    box.apply(deadLetter(7), 7, context); // drops seq 2
    await flush();
    const rows = await open.client.execute("SELECT seq FROM outbox_dead_letters ORDER BY seq");
    expect(rows.rows.map((r) => Number(r["seq"]))).toEqual([6, 7]);
    const state = new ReplicatedState();
    await state.load(open.client, { applied: 0, compactedThrough: 0 });
    expect(state.outbox.deadLetterStatus()).toEqual(box.deadLetterStatus());
    expect(state.outbox.deadLetterStatus()[0]).toMatchObject({ deadLetters: 2, deadLettersDropped: 2 });
    expect(state.outbox.deadLetters("pkg", 0, 10)).toEqual(box.deadLetters("pkg", 0, 10));
    open.close();
  });

  test("a version-4 snapshot (before dead letters) still restores: its outbox, no dead letters, and dead letters work from there", () => {
    const event = encodeOprEvent(ev("from a v4 image"));
    const row = new ByteWriter(64).f64(8).text("40.3").f64(123).bytes(event).finish();
    const image = new ByteWriter(256)
      .u8(4).f64(50) // version, index
      .u32(0).u32(0) // kv records, members
      .text("").text("").u32(0) // config: draft, runtime, deployments
      .u32(1).text("pkg").f64(9).f64(7) // outbox packages: name, next seq, cursor
      .u32(0) // dedup keys
      .u32(1).text("pkg").bytes(row) // outbox events
      .finish();
    const state = new ReplicatedState();
    state.restore(image, 50);
    expect(state.outbox.pending("pkg", 0, 10).map((e) => [e.seq, e.id, e.acceptedAtMs, e.event.title])).toEqual([[8, "40.3", 123, "from a v4 image"]]);
    expect(state.outbox.deadLetterStatus()).toEqual([{ package: "pkg", deadLetters: 0, deadLetterBytes: 0, deadLettersDropped: 0, lastDeadLetter: null }]);
    expect(state.outbox.apply(deadLetter(8), 51, context).ok).toBe(true);
    expect(state.outbox.deadLetters("pkg", 0, 10).map((d) => [d.seq, d.id])).toEqual([[8, "40.3"]]);
  });

  test("random accepts, cursor moves, dead letters, requeues, flushes, compactions and reboots: every reboot agrees with a node that never stopped", async () => {
    for (const seed of [1, 2, 3]) {
      const rng = seededRng(seed);
      const int = (n: number) => rng.nextInt(n);
      const node = await durableNode();
      await node.flush();
      let current = node.state;
      const reference = new ReplicatedState(); // the same entries, never flushed or rebooted
      const saved = await node.open.client.execute("SELECT idx, term, type, data FROM raft_entries ORDER BY idx");
      reference.apply(saved.rows.map((r) => ({ index: Number(r["idx"]), term: 1, type: "normal" as const, data: new Uint8Array(r["data"] as ArrayBuffer) })));
      let index = node.index();
      let compactedThrough = 0;
      let flushedIndex = current.applied;
      const store = node.store;
      const commit = async (command: Command) => {
        const entry: Entry = { index: ++index, term: 1, type: "normal", data: encodeCommand(command) };
        await store.save({ hardState: { term: 1, votedFor: null, commit: index }, entries: [entry], snapshot: null });
        expect(current.apply([entry]).results[0]).toEqual(reference.apply([entry]).results[0]!);
      };
      let moved = 0;
      let requeued = 0;
      for (let step = 0; step < 150; step++) {
        const roll = int(12);
        const cursor = reference.outbox.status().find((o) => o.package === "pkg")?.cursor ?? 0;
        const last = reference.outbox.lastSeq("pkg");
        if (roll < 4) {
          await commit({ kind: "outbox", op: accept(Array.from({ length: 1 + int(4) }, () => `e${step}.${int(1000)}`)) });
        } else if (roll < 5 && last > cursor) {
          await commit({ kind: "outbox", op: { op: "forwarded", package: "pkg", epoch: 1, through: cursor + 1 + int(last - cursor) } });
        } else if (roll < 7 && last > cursor) {
          await commit({ kind: "outbox", op: { op: "dead-letter", package: "pkg", epoch: 1, seq: cursor + 1, atMs: step, reason: reason(cursor + 1) } });
          moved++;
        } else if (roll < 8) {
          const held = reference.outbox.deadLetters("pkg", 0, deadLetterLimits.pageMax).map((d) => d.seq);
          const some = held.filter(() => int(2) === 0);
          await commit({ kind: "outbox", op: requeue(int(3) === 0 ? "all" : some.length > 0 ? some : [1_000_000]) });
          requeued += some.length;
        } else if (roll < 10) {
          if (int(2) === 0) compactedThrough = Math.max(compactedThrough, index - int(5));
          const statements: SqlStatement[] = [];
          current.flush(statements, { compactedThrough });
          await store.commit([...statements, store.appliedStatement(current.applied)], { durable: true });
          flushedIndex = current.applied;
        } else if (roll < 11) {
          current = new ReplicatedState();
          await current.load(node.open.client, { applied: flushedIndex, compactedThrough: Math.min(compactedThrough, flushedIndex) });
          const after = await node.open.client.execute({ sql: "SELECT idx, term, type, data FROM raft_entries WHERE idx > ? ORDER BY idx", args: [flushedIndex] });
          current.apply(after.rows.map((r) => ({ index: Number(r["idx"]), term: 1, type: "normal" as const, data: new Uint8Array(r["data"] as ArrayBuffer) })));
        }
        expect(view(current)).toEqual(view(reference));
      }
      expect({ seed, moved: moved > 5, requeued: requeued > 0 }).toEqual({ seed, moved: true, requeued: true });
      node.open.close();
    }
  });
});
