/**
 * @module Opens the node's libSQL file through drizzle, sets durability, and applies migrations.
 *
 * Durability: WAL journal. A durable commit (`writer.commit(..., { durable: true })`) resolves only
 * after the WAL is fdatasynced, on Bun's I/O threads rather than this one (sql-writer.ts); the
 * migrations and boot connection use synchronous=FULL. Nothing the node acknowledges may rest on an
 * unsynced write; group commit (many Raft entries per transaction) is how throughput is won, not
 * weaker syncing.
 *
 * One exception, `durable: false` (no sync of its own): transactions whose loss in a power cut is
 * recovered by replaying the durable log (applying committed entries, moving the commit index).
 * They still survive a process crash, and the next durable commit syncs the WAL up to and including
 * them, because the WAL is written in order.
 */
import { createClient, type Client } from "@libsql/client";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { join } from "node:path";
import * as schema from "./schema.ts";
import { loadMigrations } from "./migrations.ts";
import { SqlWriter } from "./sql-writer.ts";
import { storageLimits } from "../constants.ts";

export type Database = LibSQLDatabase<typeof schema>;

export interface OpenDatabase {
  /** Boot-time reads, migrations and drizzle. */
  readonly client: Client;
  /** The hot write path (sql-writer.ts); `durable: false` only for what the Raft log can redo. */
  readonly writer: SqlWriter;
  readonly db: Database;
  readonly path: string;
  close(): void;
}

const migrationsTable = "__drizzle_migrations";

export async function openDatabase(dataDir: string): Promise<OpenDatabase> {
  const path = join(dataDir, "opsconn.db");
  const client = createClient({ url: `file:${path}` });
  try {
    // Only takes effect on a new file, before WAL mode and the first table.
    await client.execute(`PRAGMA page_size = ${storageLimits.pageBytes}`);
    await client.execute("PRAGMA journal_mode = WAL");
    await client.execute("PRAGMA synchronous = FULL");
    await client.execute("PRAGMA foreign_keys = ON");
    await client.execute("PRAGMA busy_timeout = 5000");
    await migrate(client);
  } catch (error) {
    client.close();
    throw error;
  }
  const writer = new SqlWriter(path);
  return {
    client,
    writer,
    db: drizzle(client, { schema }),
    path,
    close: () => {
      writer.close();
      client.close();
    },
  };
}

/** drizzle's migration bookkeeping (same table and hashes), applied in one atomic batch. */
async function migrate(client: Client): Promise<number> {
  await client.execute(`CREATE TABLE IF NOT EXISTS ${migrationsTable} (id INTEGER PRIMARY KEY, hash text NOT NULL, created_at numeric)`);
  const last = await client.execute(`SELECT created_at FROM ${migrationsTable} ORDER BY created_at DESC LIMIT 1`);
  const lastCreatedAt = last.rows.length > 0 ? Number(last.rows[0]!["created_at"]) : -1;
  const pending = (await loadMigrations()).filter((m) => m.createdAtMs > lastCreatedAt);
  if (pending.length === 0) return 0;
  await client.batch(
    pending.flatMap((m) => [
      ...m.statements.map((sql) => ({ sql, args: [] })),
      { sql: `INSERT INTO ${migrationsTable} (hash, created_at) VALUES (?, ?)`, args: [m.hash, m.createdAtMs] },
    ]),
    "write",
  );
  return pending.length;
}
