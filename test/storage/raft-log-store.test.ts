/**
 * One contract suite for every Raft log store (memory and libSQL), then what only a real file can
 * show: durability across reopen and SIGKILL, and checksum-based corruption handling.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { MemoryLogStore } from "../../server/storage/memory-log-store.ts";
import { LibsqlLogStore } from "../../server/storage/libsql-log-store.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { CorruptLogError, emptyHardState, type RaftLogStore } from "../../server/storage/raft-log-store.ts";
import type { Entry, Snapshot } from "../../server/raft/types.ts";
import { bunPath, cleanupAll, repoRoot, tempDir } from "../support/node-process.ts";

afterAll(cleanupAll);

const text = new TextEncoder();
function entries(from: number, to: number, term: number): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, type: "normal" as const, data: text.encode(`e${from + i}t${term}`) }));
}
const snapshotAt = (index: number, term: number): Snapshot => ({ meta: { index, term, confState: { voters: ["a", "b"], learners: ["c"] } }, data: text.encode(`image@${index}`) });

const implementations: Array<[string, () => Promise<RaftLogStore>]> = [
  ["memory", async () => new MemoryLogStore()],
  ["libsql", async () => new LibsqlLogStore(await openDatabase(tempDir()))],
];

for (const [name, make] of implementations) {
  describe(`RaftLogStore contract: ${name}`, () => {
    test("a new store is empty", async () => {
      const store = await make();
      expect((await store.load()).persisted).toEqual({ hardState: emptyHardState, snapshot: null, entries: [], applied: 0 });
      store.close();
    });

    test("saves entries and hard state together", async () => {
      const store = await make();
      await store.save({ hardState: { term: 2, votedFor: "a", commit: 3 }, entries: entries(1, 5, 2), snapshot: null });
      const { persisted } = await store.load();
      expect(persisted.hardState).toEqual({ term: 2, votedFor: "a", commit: 3 });
      expect(persisted.entries).toEqual(entries(1, 5, 2));
      store.close();
    });

    test("a batch starting inside the log overwrites the suffix", async () => {
      const store = await make();
      await store.save({ hardState: null, entries: entries(1, 5, 1), snapshot: null });
      await store.save({ hardState: null, entries: entries(3, 4, 2), snapshot: null });
      expect((await store.load()).persisted.entries).toEqual([...entries(1, 2, 1), ...entries(3, 4, 2)]);
      store.close();
    });

    test("a received snapshot replaces the log and moves applied", async () => {
      const store = await make();
      await store.save({ hardState: { term: 1, votedFor: null, commit: 5 }, entries: entries(1, 5, 1), snapshot: null });
      await store.save({ hardState: { term: 3, votedFor: null, commit: 10 }, entries: entries(11, 12, 3), snapshot: snapshotAt(10, 3) });
      const { persisted } = await store.load();
      expect(persisted.snapshot).toEqual(snapshotAt(10, 3));
      expect(persisted.entries).toEqual(entries(11, 12, 3));
      expect(persisted.applied).toBe(10);
      store.close();
    });

    test("compaction drops only the entries the snapshot covers", async () => {
      const store = await make();
      await store.save({ hardState: { term: 1, votedFor: null, commit: 8 }, entries: entries(1, 10, 1), snapshot: null });
      await store.saveApplied(6);
      await store.compact(snapshotAt(6, 1));
      const { persisted } = await store.load();
      expect(persisted.entries).toEqual(entries(7, 10, 1));
      expect(persisted.applied).toBe(6);
      store.close();
    });

    test("large batches round-trip intact", async () => {
      const store = await make();
      const many = entries(1, 20_000, 1);
      await store.save({ hardState: { term: 1, votedFor: null, commit: 20_000 }, entries: many, snapshot: null });
      expect((await store.load()).persisted.entries).toEqual(many);
      store.close();
    });
  });
}

describe("LibsqlLogStore on disk", () => {
  test("state survives closing and reopening", async () => {
    const dir = tempDir();
    const first = new LibsqlLogStore(await openDatabase(dir));
    await first.save({ hardState: { term: 4, votedFor: "b", commit: 2 }, entries: entries(1, 3, 4), snapshot: null });
    await first.saveApplied(2);
    first.close();
    const again = new LibsqlLogStore(await openDatabase(dir));
    expect((await again.load()).persisted).toEqual({ hardState: { term: 4, votedFor: "b", commit: 2 }, snapshot: null, entries: entries(1, 3, 4), applied: 2 });
    again.close();
  });

  test("an uncommitted entry failing its checksum is cut with everything after it", async () => {
    const dir = tempDir();
    const open = await openDatabase(dir);
    const store = new LibsqlLogStore(open);
    await store.save({ hardState: { term: 1, votedFor: null, commit: 2 }, entries: entries(1, 5, 1), snapshot: null });
    await open.client.execute("UPDATE raft_entries SET data = x'00' WHERE idx = 4");
    const loaded = await store.load();
    expect(loaded.cutFromIndex).toBe(4);
    expect(loaded.persisted.entries).toEqual(entries(1, 3, 1));
    expect((await store.load()).cutFromIndex).toBeNull();
    store.close();
  });

  test("a committed entry failing its checksum refuses to load", async () => {
    const open = await openDatabase(tempDir());
    const store = new LibsqlLogStore(open);
    await store.save({ hardState: { term: 1, votedFor: null, commit: 5 }, entries: entries(1, 5, 1), snapshot: null });
    await open.client.execute("UPDATE raft_entries SET term = 9 WHERE idx = 2");
    await expect(store.load()).rejects.toThrow(CorruptLogError);
    store.close();
  });

  test("a missing committed entry refuses to load", async () => {
    const open = await openDatabase(tempDir());
    const store = new LibsqlLogStore(open);
    await store.save({ hardState: { term: 1, votedFor: null, commit: 5 }, entries: entries(1, 5, 1), snapshot: null });
    await open.client.execute("DELETE FROM raft_entries WHERE idx = 3");
    await expect(store.load()).rejects.toThrow(/entry 3 is missing/);
    store.close();
  });

  test("a damaged snapshot refuses to load", async () => {
    const open = await openDatabase(tempDir());
    const store = new LibsqlLogStore(open);
    await store.save({ hardState: { term: 2, votedFor: null, commit: 4 }, entries: [], snapshot: snapshotAt(4, 2) });
    await open.client.execute("UPDATE raft_snapshot SET data = x'01'");
    await expect(store.load()).rejects.toThrow(CorruptLogError);
    store.close();
  });

  test("after SIGKILL mid-write, every acknowledged batch is there and the log is contiguous", async () => {
    const dir = tempDir();
    const child = Bun.spawn([bunPath, "test/storage/fixtures/log-writer.ts", dir], { cwd: repoRoot, stdout: "pipe", stderr: "inherit" });
    const reader = child.stdout.getReader();
    let acked = 0;
    let buffered = "";
    while (acked < 3000) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += new TextDecoder().decode(value);
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) acked = Math.max(acked, Number(line));
    }
    child.kill("SIGKILL");
    await child.exited;
    const store = new LibsqlLogStore(await openDatabase(dir));
    const { persisted, cutFromIndex } = await store.load();
    expect(cutFromIndex).toBeNull();
    expect(persisted.entries.length).toBeGreaterThanOrEqual(acked);
    expect(persisted.hardState.commit).toBe(persisted.entries.length);
    persisted.entries.forEach((e, i) => expect(e.index).toBe(i + 1));
    store.close();
  }, 30_000);
});

describe("libSQL log store: compaction", () => {
  test("records the snapshot durably and stops loading covered entries, but leaves their rows to the state machine", async () => {
    const dir = tempDir();
    const rows = async (open: Awaited<ReturnType<typeof openDatabase>>) => Number((await open.client.execute("SELECT count(*) FROM raft_entries")).rows[0]?.[0]);
    let open = await openDatabase(dir);
    let store = new LibsqlLogStore(open);
    await store.load();
    await store.save({ hardState: { term: 1, votedFor: null, commit: 3500 }, entries: entries(1, 3500, 1), snapshot: null });
    await store.saveApplied(3000);
    await store.compact(snapshotAt(3000, 1));
    // Covered rows may still hold live key-value data (server/state/kv-table.ts): none is deleted here.
    await store.save({ hardState: null, entries: entries(3501, 3501, 1), snapshot: null });
    expect(await rows(open)).toBe(3501);
    expect((await store.load()).persisted.entries[0]?.index).toBe(3001);
    await expect(store.compact(snapshotAt(3000, 1))).rejects.toThrow("compaction only moves forward");
    store.close();

    open = await openDatabase(dir);
    store = new LibsqlLogStore(open);
    const { persisted } = await store.load();
    expect(persisted.snapshot?.meta.index).toBe(3000);
    expect(persisted.entries.map((e) => e.index)).toEqual(entries(3001, 3501, 1).map((e) => e.index));
    store.close();
  });
});
