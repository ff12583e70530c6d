/**
 * @module The write path to the node's libSQL file: native `libsql` connections (the driver under
 * @libsql/client) with a cache of prepared statements, one transaction per call.
 *
 * Durability without blocking the thread: transactions commit with synchronous=NORMAL (in WAL mode
 * that writes the WAL frames and fsyncs only around checkpoints, so the file is always consistent),
 * and a durable commit then waits for fdatasync of the WAL file on Bun's I/O thread pool. Frames are
 * appended in commit order, so once that sync returns the commit and all before it are on disk:
 * what synchronous=FULL gives, except that the node's one thread keeps handling the network (acks,
 * requests) while the disk works instead of blocking for every fsync.
 *
 * Why not @libsql/client here: it prepares every statement on every execution, BEGIN and COMMIT
 * included, which measured 6-11% of a busy node's CPU. Hot statements have fixed SQL text (see
 * multi-row.ts), so a small cache holds all of them. drizzle still owns the schema, migrations and
 * the reads at boot; only this path bypasses it, for the same reason.
 */
import Database from "libsql";
import { closeSync, fdatasync, openSync } from "node:fs";
import { assert } from "../assert.ts";
import { storageLimits } from "../constants.ts";

export type SqlValue = string | number | bigint | Uint8Array | null;

export interface SqlStatement {
  readonly sql: string;
  readonly args: readonly SqlValue[];
}

type Prepared = ReturnType<Database.Database["prepare"]>;

export class SqlWriter {
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Prepared>();
  private readonly beginStatement: Prepared;
  private readonly commitStatement: Prepared;
  private readonly rollbackStatement: Prepared;
  /** The WAL file, opened only to sync it; SQLite keeps the same file while a connection is open. */
  private readonly walFd: number;
  /** The native driver aborts the process on a closed connection, so a late write is refused here. */
  private closed = false;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA synchronous = NORMAL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    // Negative cache_size is in KiB.
    this.db.exec(`PRAGMA cache_size = -${Math.floor(storageLimits.pageCacheBytes / 1024)}`);
    this.beginStatement = this.db.prepare("BEGIN IMMEDIATE");
    this.commitStatement = this.db.prepare("COMMIT");
    this.rollbackStatement = this.db.prepare("ROLLBACK");
    // "a": created if SQLite has not made it yet (an empty WAL is valid); never written through.
    this.walFd = openSync(`${path}-wal`, "a");
  }

  /**
   * All statements or none; throws (after rolling back) if any fails. `durable`: resolves once the
   * commit is on disk (see the module comment); otherwise at once, only for what the durable Raft
   * log can redo (database.ts). The transaction itself runs before this returns either way, so
   * writes keep their call order.
   */
  commit(statements: readonly SqlStatement[], options: { readonly durable: boolean }): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the database is closed"));
    this.transaction(statements);
    return options.durable ? this.syncWal() : Promise.resolve();
  }

  /**
   * A read on this connection, at once: it sees every commit made through it. For state that must
   * be rebuilt before anything else runs (nothing can interleave with a synchronous read).
   */
  rows(sql: string, args: readonly SqlValue[] = []): Record<string, unknown>[] {
    if (this.closed) throw new Error("the database is closed");
    return this.prepared(sql).all(args as SqlValue[]) as Record<string, unknown>[];
  }

  /** Resolves when everything committed so far is on disk. */
  syncWal(): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the database is closed"));
    return new Promise((resolve, reject) => fdatasync(this.walFd, (error) => (error === null ? resolve() : reject(error))));
  }

  private transaction(statements: readonly SqlStatement[]): void {
    assert(statements.length > 0, "an empty transaction is a caller bug");
    this.beginStatement.run([]);
    try {
      for (const statement of statements) this.prepared(statement.sql).run(statement.args as SqlValue[]);
      this.commitStatement.run([]);
    } catch (error) {
      if (this.db.inTransaction) this.rollbackStatement.run([]);
      throw error;
    }
  }

  /** Least recently used eviction: a Map iterates in insertion order, so a hit moves to the end. */
  private prepared(sql: string): Prepared {
    let statement = this.cache.get(sql);
    if (statement !== undefined) this.cache.delete(sql);
    else {
      if (this.cache.size >= storageLimits.preparedStatementsMax) this.cache.delete(this.cache.keys().next().value!);
      statement = this.db.prepare(sql);
    }
    this.cache.set(sql, statement);
    return statement;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    this.db.close();
    closeSync(this.walFd);
  }
}
