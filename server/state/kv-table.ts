/**
 * @module The replicated key-value module: an in-memory map that is the authoritative view for
 * reads, and the SQL that makes each change durable in the same transaction as the applied index.
 * Deterministic: the same entries give the same map and the same statements on every node.
 */
import type { InStatement } from "@libsql/client";
import { assert } from "../assert.ts";

export interface KvRecord {
  readonly value: Uint8Array;
  readonly modIndex: number;
}

const upsertRowsMax = 8000;

export class KvTable {
  private readonly records = new Map<string, KvRecord>();

  get(key: string): KvRecord | undefined {
    return this.records.get(key);
  }

  get size(): number {
    return this.records.size;
  }

  entries(): IterableIterator<[string, KvRecord]> {
    return this.records.entries();
  }

  put(items: ReadonlyArray<{ key: string; value: Uint8Array }>, index: number, out: InStatement[]): void {
    assert(index > 0, "kv writes come from log entries");
    for (let start = 0; start < items.length; start += upsertRowsMax) {
      const chunk = items.slice(start, start + upsertRowsMax);
      const args: Array<string | number | Uint8Array> = [];
      for (const { key, value } of chunk) {
        this.records.set(key, { value, modIndex: index });
        args.push(key, value, index);
      }
      out.push({
        sql: `INSERT INTO kv (key, value, mod_index) VALUES (?,?,?)${",(?,?,?)".repeat(chunk.length - 1)} ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_index = excluded.mod_index`,
        args,
      });
    }
  }

  delete(key: string, out: InStatement[]): boolean {
    const existed = this.records.delete(key);
    out.push({ sql: "DELETE FROM kv WHERE key = ?", args: [key] });
    return existed;
  }

  /** Replaces the whole table (snapshot restore or boot). */
  replace(rows: Iterable<[string, KvRecord]>): void {
    this.records.clear();
    for (const [key, record] of rows) this.records.set(key, record);
  }
}
