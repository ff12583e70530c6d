/**
 * @module The write path to the node's libSQL file: native `libsql` connections (the driver under
 * @libsql/client) with a cache of prepared statements, one transaction per call.
 *
 * Why not @libsql/client here: it prepares every statement on every execution, BEGIN and COMMIT
 * included, which measured 6-11% of a busy node's CPU. Hot statements have fixed SQL text (see
 * multi-row.ts), so a small cache holds all of them. drizzle still owns the schema, migrations and
 * the reads at boot; only this path bypasses it, for the same reason.
 */
import Database from "libsql";
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
  private readonly begin: Prepared;
  private readonly commit: Prepared;
  private readonly rollback: Prepared;
  private readonly syncFull: Prepared;
  private readonly syncNormal: Prepared;
  private durable = true;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA synchronous = FULL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    // Negative cache_size is in KiB.
    this.db.exec(`PRAGMA cache_size = -${Math.floor(storageLimits.pageCacheBytes / 1024)}`);
    this.begin = this.db.prepare("BEGIN IMMEDIATE");
    this.commit = this.db.prepare("COMMIT");
    this.rollback = this.db.prepare("ROLLBACK");
    this.syncFull = this.db.prepare("PRAGMA synchronous = FULL");
    this.syncNormal = this.db.prepare("PRAGMA synchronous = NORMAL");
  }

  /**
   * All statements or none. Throws (after rolling back) if any fails. `durable`: fsynced before it
   * returns (synchronous=FULL); otherwise synchronous=NORMAL, only for what the durable log can redo
   * (database.ts). One connection switches modes rather than two connections taking turns, because
   * a write on one connection makes SQLite discard the other's whole page cache.
   */
  transaction(statements: readonly SqlStatement[], options: { readonly durable: boolean }): void {
    assert(statements.length > 0, "an empty transaction is a caller bug");
    if (options.durable !== this.durable) {
      (options.durable ? this.syncFull : this.syncNormal).run([]);
      this.durable = options.durable;
    }
    this.begin.run([]);
    try {
      for (const statement of statements) this.prepared(statement.sql).run(statement.args as SqlValue[]);
      this.commit.run([]);
    } catch (error) {
      if (this.db.inTransaction) this.rollback.run([]);
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
    this.cache.clear();
    this.db.close();
  }
}
