import { describe, expect, test, afterAll } from "bun:test";
import { ReplicatedState, type KvUpkeep } from "../../server/state/replicated-state.ts";
import { encodeCommand, type Command } from "../../server/state/command-codec.ts";
import type { Entry } from "../../server/raft/types.ts";
import type { SqlStatement } from "../../server/storage/sql-writer.ts";
import { AssertionError } from "../../server/assert.ts";
import { openDatabase, type OpenDatabase } from "../../server/storage/database.ts";
import { LibsqlLogStore } from "../../server/storage/libsql-log-store.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";

afterAll(cleanupAll);

const bytes = (s: string) => new TextEncoder().encode(s);
const entry = (index: number, command: Command | null): Entry => ({ index, term: 1, type: "normal", data: command === null ? new Uint8Array(0) : encodeCommand(command) });
const plain = (state: ReplicatedState) =>
  [...state.kv.entries()].map(([key, r]) => [key, new TextDecoder().decode(r.value), r.modIndex] as const).sort(([a], [b]) => (a < b ? -1 : 1));

describe("ReplicatedState", () => {
  test("applies puts, batches and deletes in order; a flush writes only tombstones, since values stay in the log", () => {
    const state = new ReplicatedState();
    const { results } = state.apply([
      entry(1, null),
      entry(2, { kind: "kv-put", key: "a", value: bytes("1") }),
      entry(3, { kind: "kv-put-batch", items: [{ key: "b", value: bytes("2") }, { key: "a", value: bytes("3") }] }),
      entry(4, { kind: "kv-delete", key: "b" }),
      entry(5, { kind: "kv-delete", key: "never-there" }),
    ]);
    expect(results).toEqual([1, 2, 3, 4, 5].map((index) => ({ index, ok: true })));
    expect(state.unflushedCount).toBe(1);
    const statements: SqlStatement[] = [];
    state.flush(statements, { compactedThrough: 0 });
    expect(state.flushed).toBe(5);
    expect(statements.map((st) => st.sql.split(" ").slice(0, 3).join(" "))).toEqual(["INSERT INTO kv"]);
    expect(statements[0]!.args).toEqual(["b", null, 4]);
    expect(plain(state)).toEqual([["a", "3", 3]]);
    expect(state.applied).toBe(5);
  });

  test("compacted entries go unless they hold a live value", () => {
    const state = new ReplicatedState();
    state.apply([
      entry(1, { kind: "kv-put", key: "a", value: bytes("1") }),
      entry(2, { kind: "kv-put", key: "b", value: bytes("2") }),
      entry(3, { kind: "kv-put", key: "a", value: bytes("3") }),
      entry(4, null),
    ]);
    const statements: SqlStatement[] = [];
    state.flush(statements, { compactedThrough: 4 });
    expect(statements.map((st) => [st.sql, st.args])).toEqual([
      ["DELETE FROM raft_entries WHERE idx >= ? AND idx <= ?", [1, 1]],
      ["DELETE FROM raft_entries WHERE idx >= ? AND idx <= ?", [4, 4]],
    ]);
  });

  test("a malformed command is a failed result on every node, not a crash", () => {
    const state = new ReplicatedState();
    const { results } = state.apply([{ index: 1, term: 1, type: "normal", data: new Uint8Array([1, 42]) }]);
    expect(results[0]).toEqual({ index: 1, ok: false, error: "unknown command kind 42" });
    expect(state.applied).toBe(1);
  });

  test("applying out of order, or compacting past the applied index, is a bug", () => {
    const state = new ReplicatedState();
    expect(() => state.apply([entry(2, null)])).toThrow(AssertionError);
    expect(() => state.flush([], { compactedThrough: 1 })).toThrow(AssertionError);
  });

  test("snapshot and restore reproduce the same state, every value in its kv row", () => {
    const source = new ReplicatedState();
    source.apply(Array.from({ length: 50 }, (_, i) => entry(i + 1, { kind: "kv-put", key: `k${i % 7}`, value: bytes(`v${i}`) })));
    const target = new ReplicatedState();
    const statements = target.restore(source.snapshot(), 50);
    expect(statements[0]!.sql).toBe("DELETE FROM kv");
    const kvRows = statements.filter((st) => st.sql.startsWith("INSERT INTO kv")).reduce((n, st) => n + st.args.length / 3, 0);
    expect(kvRows).toBe(7); // rows in power-of-two chunks: 4 + 2 + 1
    expect(statements.some((st) => st.sql === "DELETE FROM members")).toBe(true);
    expect(target.flushed).toBe(50);
    expect(plain(target)).toEqual(plain(source));
    expect(target.applied).toBe(50);
  });
});

describe("ReplicatedState tombstones on a real file", () => {
  test("an expiring tombstone never takes a newer tombstone of the same key with it", async () => {
    const dir = tempDir();
    const open = await openDatabase(dir);
    const store = new LibsqlLogStore(open);
    await store.load();
    const state = new ReplicatedState();
    await state.load(open.client, { applied: 0, compactedThrough: 0 });
    const run = async (entries: Entry[], compactedThrough: number) => {
      await store.save({ hardState: { term: 1, votedFor: null, commit: entries.at(-1)!.index }, entries, snapshot: null });
      state.apply(entries);
      const statements: SqlStatement[] = [];
      state.flush(statements, { compactedThrough });
      await store.commit([...statements, store.appliedStatement(state.applied)], { durable: true });
    };
    await run([entry(1, { kind: "kv-put", key: "k", value: bytes("a") }), entry(2, { kind: "kv-delete", key: "k" })], 0);
    // Entry 3 writes k again, then stays on disk for the sake of x; k is deleted once more at 5.
    await run(
      [
        entry(3, { kind: "kv-put-batch", items: [{ key: "k", value: bytes("b") }, { key: "x", value: bytes("x") }] }),
        entry(4, { kind: "kv-put", key: "y", value: bytes("y") }),
        entry(5, { kind: "kv-delete", key: "k" }),
      ],
      5,
    );
    // Entries 1, 2 and 5 are gone, so the tombstone from 2 expired; the one from 5 must stay.
    const stored = await open.client.execute("SELECT idx FROM raft_entries ORDER BY idx");
    expect(stored.rows.map((r) => Number(r["idx"]))).toEqual([3, 4]);
    const rows = await open.client.execute("SELECT key, value, mod_index FROM kv");
    expect(rows.rows.map((r) => [r["key"], r["value"], r["mod_index"]])).toEqual([["k", null, 5]]);
    const again = new ReplicatedState();
    await again.load(open.client, { applied: 5, compactedThrough: 5 });
    expect(plain(again)).toEqual([["x", "x", 3], ["y", "y", 4]]);
    store.close();
  });
});

/**
 * The durable form against a plain map, on a real libSQL file, through everything that changes
 * it: puts (single and batched, on a few hot keys and on keys written once), deletes, flushes,
 * compaction, cleaning, tombstone expiry, a received snapshot, and reboots that replay the stored
 * log from the last flushed applied index, as after a crash. Small upkeep limits reach every path.
 */
describe("ReplicatedState durable form against a model", () => {
  const confState = { voters: ["a"], learners: [] };
  // Eager cleaning; deletion lagging behind cleaning; cleaning only to let tombstones expire
  // (entries with one live value stay, so tombstones must stop their dead writes from coming back).
  const upkeeps: KvUpkeep[] = [
    { deleteRowsMax: 7, scanStepsMax: 11, cleanValuesMax: 5, garbageSlackBytes: 0, tombstonesMax: 3, tombstonesSlack: 1000 },
    { deleteRowsMax: 1, scanStepsMax: 3, cleanValuesMax: 8, garbageSlackBytes: 0, tombstonesMax: 1, tombstonesSlack: 1000 },
    { deleteRowsMax: 5, scanStepsMax: 20, cleanValuesMax: 5, garbageSlackBytes: 1 << 30, tombstonesMax: 2, tombstonesSlack: 4 },
  ];

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const upkeep = upkeeps[seed % 3]!;
    test(`seed ${seed}: every reboot restores exactly the applied state; the stored log stays bounded`, async () => {
      let rng = seed * 2654435761;
      const next = (n: number) => ((rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) >>> 8) % n;
      const dir = tempDir();
      let open: OpenDatabase = await openDatabase(dir);
      let store = new LibsqlLogStore(open);
      await store.load();
      let state = new ReplicatedState(upkeep);
      await state.load(open.client, { applied: 0, compactedThrough: 0 });
      const model = new Map<string, { value: string; index: number }>();
      const log: Entry[] = [];
      let compacted = 0;
      const reboot = async () => {
        store.close();
        open = await openDatabase(dir);
        store = new LibsqlLogStore(open);
        const { persisted } = await store.load();
        state = new ReplicatedState(upkeep);
        await state.load(open.client, { applied: persisted.applied, compactedThrough: persisted.snapshot?.meta.index ?? 0 });
        state.apply(log.slice(persisted.applied));
        compacted = persisted.snapshot?.meta.index ?? 0;
        expect(plain(state)).toEqual([...model].map(([k, r]) => [k, r.value, r.index] as const).sort(([a], [b]) => (a < b ? -1 : 1)));
      };
      /** Returns whether the flush had anything but the applied index to write. */
      const flush = async () => {
        const statements: SqlStatement[] = [];
        const moved = state.applied !== state.flushed;
        state.flush(statements, { compactedThrough: compacted });
        if (statements.length === 0 && !moved) return false;
        statements.push(store.appliedStatement(state.applied));
        await store.commit(statements, { durable: true });
        return statements.length > 1;
      };
      for (let round = 0; round < 400; round++) {
        const entries: Entry[] = [];
        for (let n = 1 + next(4); n > 0; n--) {
          const index = log.length + entries.length + 1;
          const key = () => (next(3) === 0 ? `once-${index}-${next(1000)}` : `hot-${next(12)}`);
          const roll = next(10);
          let command: Command | null;
          if (roll < 4) command = { kind: "kv-put", key: key(), value: bytes(`v${index}`) };
          else if (roll < 7) command = { kind: "kv-put-batch", items: Array.from({ length: 1 + next(6) }, (_, i) => ({ key: key(), value: bytes(`v${index}.${i}`) })) };
          else if (roll < 9) command = { kind: "kv-delete", key: next(2) === 0 ? `hot-${next(12)}` : ([...model.keys()][next(Math.max(1, model.size))] ?? "none") };
          else command = null;
          if (command?.kind === "kv-put") model.set(command.key, { value: `v${index}`, index });
          if (command?.kind === "kv-put-batch") command.items.forEach((item, i) => model.set(item.key, { value: `v${index}.${i}`, index }));
          if (command?.kind === "kv-delete") model.delete(command.key);
          entries.push(entry(index, command));
        }
        log.push(...entries);
        await store.save({ hardState: { term: 1, votedFor: null, commit: log.length }, entries, snapshot: null });
        state.apply(entries);
        if (next(3) === 0) await flush();
        if (next(8) === 0 && state.flushed > compacted) {
          compacted = state.flushed;
          await store.compact({ meta: { index: compacted, term: 1, confState }, data: new Uint8Array(0) });
        }
        if (next(150) === 0) {
          // A snapshot from the leader replaces everything; the log after it starts empty.
          const fresh = new ReplicatedState(upkeep);
          const statements = fresh.restore(state.snapshot(), state.applied);
          statements.push(...store.statementsFor({ hardState: null, entries: [], snapshot: { meta: { index: state.applied, term: 1, confState }, data: state.snapshot() } }));
          await store.commit(statements, { durable: true });
          state = fresh;
          compacted = state.applied;
        }
        if (next(25) === 0) await reboot();
      }
      await reboot();
      // Quiesce: compact everything and let the upkeep run until it has nothing left to do.
      await flush();
      compacted = state.applied;
      await store.compact({ meta: { index: compacted, term: 1, confState }, data: new Uint8Array(0) });
      // (A flush can write nothing while its scan is still passing retained entries.)
      let idleFlushes = 0;
      for (let i = 0; i < 20_000 && idleFlushes < 1000; i++) idleFlushes = (await flush()) ? 0 : idleFlushes + 1;
      expect(idleFlushes).toBe(1000);
      const stored = await open.client.execute("SELECT idx FROM raft_entries");
      const holding = new Set([...model.values()].map((r) => r.index));
      // Every stored entry holds a live value, unless its values were moved into kv rows.
      for (const row of stored.rows) expect(holding.has(Number(row["idx"]))).toBe(true);
      const { bytes: retainedBytes, liveBytes } = state.kv.retainedLog;
      if (upkeep.garbageSlackBytes === 0) expect(retainedBytes).toBeLessThanOrEqual(2 * liveBytes);
      // No tombstone outlives the entries it guards against.
      const tombstones = await open.client.execute("SELECT count(*) AS n FROM kv WHERE value IS NULL AND mod_index < (SELECT coalesce(min(idx), 1e18) FROM raft_entries)");
      expect(Number(tombstones.rows[0]!["n"])).toBe(0);
      const kvRows = await open.client.execute("SELECT key, value, mod_index FROM kv");
      const tombstoneRows = kvRows.rows.filter((r) => r["value"] === null);
      expect(tombstoneRows.length).toBeLessThanOrEqual(upkeep.tombstonesSlack);
      // No value row outlives the value it holds.
      for (const row of kvRows.rows.filter((r) => r["value"] !== null)) expect(model.get(String(row["key"]))?.index).toBe(Number(row["mod_index"]));
      await reboot();
      store.close();
    }, 30_000);
  }
});
