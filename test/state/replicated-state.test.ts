import { describe, expect, test } from "bun:test";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { encodeCommand, type Command } from "../../server/state/command-codec.ts";
import type { Entry } from "../../server/raft/types.ts";
import type { SqlStatement } from "../../server/storage/sql-writer.ts";
import { AssertionError } from "../../server/assert.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const entry = (index: number, command: Command | null): Entry => ({ index, term: 1, type: "normal", data: command === null ? new Uint8Array(0) : encodeCommand(command) });

describe("ReplicatedState", () => {
  test("applies puts, batches and deletes in order; a flush writes each key's final state once", () => {
    const state = new ReplicatedState();
    const { results } = state.apply([
      entry(1, null),
      entry(2, { kind: "kv-put", key: "a", value: bytes("1") }),
      entry(3, { kind: "kv-put-batch", items: [{ key: "b", value: bytes("2") }, { key: "a", value: bytes("3") }] }),
      entry(4, { kind: "kv-delete", key: "b" }),
    ]);
    expect(results).toEqual([1, 2, 3, 4].map((index) => ({ index, ok: true })));
    expect(state.unflushedCount).toBe(2);
    const statements: SqlStatement[] = [];
    state.flush(statements);
    expect(state.flushed).toBe(4);
    expect(statements.map((st) => st.sql.split(" ").slice(0, 3).join(" "))).toEqual(["DELETE FROM kv", "INSERT INTO kv"]);
    expect(statements[1]!.args).toEqual(["a", bytes("3"), 3]);
    expect(state.kv.get("a")).toEqual({ value: bytes("3"), modIndex: 3 });
    expect(state.kv.get("b")).toBeUndefined();
    expect(state.applied).toBe(4);
  });

  test("a malformed command is a failed result on every node, not a crash", () => {
    const state = new ReplicatedState();
    const { results } = state.apply([{ index: 1, term: 1, type: "normal", data: new Uint8Array([1, 42]) }]);
    expect(results[0]).toEqual({ index: 1, ok: false, error: "unknown command kind 42" });
    expect(state.applied).toBe(1);
  });

  test("applying out of order is a bug", () => {
    const state = new ReplicatedState();
    expect(() => state.apply([entry(2, null)])).toThrow(AssertionError);
  });

  test("snapshot and restore reproduce the same state", () => {
    const source = new ReplicatedState();
    source.apply(Array.from({ length: 50 }, (_, i) => entry(i + 1, { kind: "kv-put", key: `k${i % 7}`, value: bytes(`v${i}`) })));
    const target = new ReplicatedState();
    const statements = target.restore(source.snapshot(), 50);
    expect(statements[0]!.sql).toBe("DELETE FROM kv");
    const kvRows = statements.filter((st) => st.sql.startsWith("INSERT INTO kv")).reduce((n, st) => n + st.args.length / 3, 0);
    expect(kvRows).toBe(7); // rows in power-of-two chunks: 4 + 2 + 1
    expect(statements.some((st) => st.sql === "DELETE FROM members")).toBe(true);
    expect(target.flushed).toBe(50);
    expect([...target.kv.entries()]).toEqual([...source.kv.entries()]);
    expect(target.applied).toBe(50);
  });
});

describe("ReplicatedState against real libSQL", () => {
  test("merged statements leave the table exactly as the in-memory state, across many batches", async () => {
    const { openDatabase } = await import("../../server/storage/database.ts");
    const { tempDir, cleanupAll } = await import("../support/node-process.ts");
    const open = await openDatabase(tempDir());
    const state = new ReplicatedState();
    let index = 0;
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 1000;
    for (let batch = 0; batch < 40; batch++) {
      const entries: Entry[] = [];
      for (let i = 0; i < 1 + (next() % 90); i++) {
        const key = `k${next() % 60}`;
        const command: Command = next() % 4 === 0 ? { kind: "kv-delete", key } : { kind: "kv-put", key, value: bytes(`v${index}`) };
        entries.push(entry(++index, command));
      }
      state.apply(entries);
      const statements: SqlStatement[] = [{ sql: "SELECT 1", args: [] }];
      if (batch % 3 === 0) state.flush(statements); // flushes span several apply batches, as in the driver
      await open.writer.commit(statements, { durable: true });
    }
    {
      const statements: SqlStatement[] = [];
      state.flush(statements);
      if (statements.length > 0) await open.writer.commit(statements, { durable: true });
    }
    const rows = await open.client.execute("SELECT key, value, mod_index FROM kv ORDER BY key");
    const fromDb = rows.rows.map((r) => [String(r["key"]), new TextDecoder().decode(new Uint8Array(r["value"] as ArrayBuffer)), Number(r["mod_index"])]);
    const fromMemory = [...state.kv.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, r]) => [k, new TextDecoder().decode(r.value), r.modIndex]);
    expect(fromDb).toEqual(fromMemory);
    open.close();
    cleanupAll();
  });
});
