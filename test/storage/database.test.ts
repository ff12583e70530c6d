/** A real libSQL file: durability pragmas, idempotent migrations, data directory ownership. */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync, statSync } from "node:fs";
import { openDatabase } from "../../server/storage/database.ts";
import { loadMigrations } from "../../server/storage/migrations.ts";
import { claimDataDir, DataDirOwnedError } from "../../server/storage/node-meta.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";

afterAll(cleanupAll);

describe("openDatabase", () => {
  test("uses WAL with synchronous=FULL", async () => {
    const open = await openDatabase(tempDir());
    expect((await open.client.execute("PRAGMA journal_mode")).rows[0]?.[0]).toBe("wal");
    expect((await open.client.execute("PRAGMA synchronous")).rows[0]?.[0]).toBe(2); // 2 = FULL
    open.close();
  });

  test("the write path syncs the database's own WAL file, also after checkpoints reset it", async () => {
    const dir = tempDir();
    const open = await openDatabase(dir);
    const walLinks = () =>
      readdirSync("/proc/self/fd").flatMap((fd) => {
        try {
          const target = readlinkSync(`/proc/self/fd/${fd}`);
          return target.startsWith(`${open.path}-wal`) ? [target] : [];
        } catch {
          return []; // an fd closed while listing
        }
      });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 50; i++) await open.writer.commit([{ sql: "INSERT INTO node_meta (key, value, updated_at_ms) VALUES (?, 'v', 0) ON CONFLICT(key) DO UPDATE SET value = excluded.value", args: [`k${i}`] }], { durable: true });
      await open.client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    // Every open descriptor of the WAL names the live file: none was replaced and left "(deleted)".
    expect(walLinks().length).toBeGreaterThan(0);
    expect(walLinks().every((target) => target === `${open.path}-wal`)).toBe(true);
    expect(statSync(`${open.path}-wal`).size).toBe(0); // truncated in place by the last checkpoint
    open.close();
  });

  test("a write after close is refused with an error (the native driver would abort the process)", async () => {
    const open = await openDatabase(tempDir());
    open.close();
    const late = { sql: "INSERT INTO node_meta (key, value, updated_at_ms) VALUES ('k', 'v', 0)", args: [] };
    await expect(open.writer.commit([late], { durable: true })).rejects.toThrow("the database is closed");
    await expect(open.writer.syncWal()).rejects.toThrow("the database is closed");
    open.close(); // twice is harmless
  });

  test("applies every migration once, across reopenings", async () => {
    const dir = tempDir();
    const expected = (await loadMigrations()).length;
    expect(expected).toBeGreaterThan(0);
    for (let i = 0; i < 2; i++) {
      const open = await openDatabase(dir);
      const rows = await open.client.execute("SELECT count(*) FROM __drizzle_migrations");
      expect(Number(rows.rows[0]?.[0])).toBe(expected);
      open.close();
    }
  });

  test("a data directory belongs to the first node that claims it", async () => {
    const dir = tempDir();
    const first = await openDatabase(dir);
    expect(await claimDataDir(first.db, { nodeId: "a", nowMs: 1 })).toBe("claimed");
    first.close();
    const again = await openDatabase(dir);
    expect(await claimDataDir(again.db, { nodeId: "a", nowMs: 2 })).toBe("reopened");
    await expect(claimDataDir(again.db, { nodeId: "b", nowMs: 3 })).rejects.toThrow(DataDirOwnedError);
    again.close();
  });
});
