/**
 * @module The OMi receiver simulator's data, in a libSQL file: the events as OMi would hold them
 * (keyed duplicate suppression, close-key handling), every raw delivery (so tests can count
 * duplicates), and operator changes (close, acknowledge, assign...) for back-sync to pick up.
 *
 * OMi semantics kept here: an incoming event whose `key` matches an active (not closed) event
 * updates that event and grows its duplicate_count instead of creating a new one; an event's
 * `close_key_pattern` (with `<*>` as a wildcard, as in OMi) closes the active events whose key
 * matches, before the event itself is stored.
 */
import { createClient, type Client } from "@libsql/client";
import { join } from "node:path";
import type { OprEvent } from "../connector/events/event-record.ts";
import { multiRow, type MultiRowShape } from "../storage/multi-row.ts";
import { SqlWriter, type SqlStatement, type SqlValue } from "../storage/sql-writer.ts";

export interface StoredEvent extends OprEvent {
  readonly id: string;
  readonly received_at: string;
}

export interface SimChange {
  readonly state?: string;
  readonly severity?: string;
  readonly assigned_user?: string;
  readonly annotation?: string;
}

const schema = [
  // An event's id is "omi-<seq>": the rowid is the one key, so an insert appends to one B-tree. The
  // active events by key are indexed in memory only (read once at open): an SQL index on keys from
  // hundreds of sources dirtied a page per source in every delivery, tripling the bytes written.
  `CREATE TABLE IF NOT EXISTS omi_events (seq INTEGER PRIMARY KEY, key TEXT, active INTEGER NOT NULL, document TEXT NOT NULL)`,
  `DROP INDEX IF EXISTS omi_events_active_key`,
  `CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, events INTEGER NOT NULL, body TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, at TEXT NOT NULL, change TEXT NOT NULL)`,
];

/** One delivery's writes: statements in order, and new events waiting to go as multi-row inserts. */
interface Writes {
  readonly statements: SqlStatement[];
  inserts: SqlValue[];
}

const insertShape: MultiRowShape = { head: "INSERT INTO omi_events (seq, key, active, document) VALUES", columns: 4, tail: "" };

/** The rowid behind an id ("omi-17" → 17); -1 for anything else, which matches no row. */
function seqOf(id: string): number {
  const match = /^omi-([1-9][0-9]{0,15})$/.exec(id);
  return match === null ? -1 : Number(match[1]);
}

/** New events go in a few multi-row statements (one per event cost more than SQLite's own work). */
function flushInserts(out: Writes): void {
  if (out.inserts.length === 0) return;
  multiRow(insertShape, out.inserts, out.statements);
  out.inserts = [];
}

/** What a merge needs of an active keyed event; the rest of the stored document is overwritten. */
interface ActiveEvent {
  readonly id: string;
  readonly receivedAt: string;
  duplicateCount: number;
}

export interface SimDelivery {
  readonly seq: number;
  readonly receivedAt: string;
  readonly events: number;
  readonly bodyChars: number;
  readonly body?: string;
}

export interface SimStats {
  readonly deliveries: number;
  readonly eventsDelivered: number;
  readonly events: number;
  readonly duplicateCount: number;
}

/**
 * Writes go through an in-memory index of the active keyed events and the next sequence number, so
 * one delivery is one batch of inserts and updates in one transaction (no read per event): a
 * benchmark pushes tens of thousands of events a second through this process on the same machine
 * as the group it measures. The index is rebuilt from the file at open and after a failed write.
 */
export class SimStore {
  private activeByKey = new Map<string, ActiveEvent>();
  private nextSeq = 1;
  /** Kept with the index, so a poll for counts does not scan every stored event. */
  private totals = { deliveries: 0, eventsDelivered: 0, events: 0, duplicateCount: 0 };
  /** A delivery still in flight when the store closes fails; it must not reopen the closed client. */
  private closed = false;

  /**
   * Deliveries are written through the node's write path (prepared statements kept, WAL synced off
   * this thread): preparing each multi-row insert anew was a third of this process's CPU under load.
   * Reads and the rare operator change use the client.
   */
  private constructor(
    private readonly client: Client,
    private readonly writer: SqlWriter,
  ) {}

  static async open(dataDir: string): Promise<SimStore> {
    const path = join(dataDir, "omi-sim.db");
    const client = createClient({ url: `file:${path}` });
    await client.execute("PRAGMA journal_mode = WAL");
    for (const sql of schema) await client.execute(sql);
    await migrateEarlierLayout(client);
    const store = new SimStore(client, new SqlWriter(path));
    await store.loadIndex();
    return store;
  }

  private async loadIndex(): Promise<void> {
    const next = await this.client.execute("SELECT coalesce(max(seq), 0) + 1 AS next FROM omi_events");
    const active = await this.client.execute("SELECT key, document FROM omi_events WHERE active = 1 AND key IS NOT NULL");
    this.nextSeq = Number(next.rows[0]!["next"]);
    const d = await this.client.execute("SELECT count(*) AS n, coalesce(sum(events), 0) AS e FROM deliveries");
    const e = await this.client.execute("SELECT count(*) AS n, coalesce(sum(json_extract(document, '$.duplicate_count')), 0) AS d FROM omi_events");
    this.totals = { deliveries: Number(d.rows[0]!["n"]), eventsDelivered: Number(d.rows[0]!["e"]), events: Number(e.rows[0]!["n"]), duplicateCount: Number(e.rows[0]!["d"]) };
    this.activeByKey = new Map();
    for (const row of active.rows) {
      const stored = JSON.parse(String(row["document"])) as StoredEvent;
      this.activeByKey.set(String(row["key"]), { id: stored.id, receivedAt: stored.received_at, duplicateCount: stored.duplicate_count ?? 0 });
    }
  }

  close(): void {
    this.closed = true;
    this.writer.close();
    this.client.close();
  }

  /** One POST: the raw body is recorded, then each event is stored or merged; returns the ids. The index and counts run ahead of the write and are reloaded if it fails. */
  async deliver(body: string, events: readonly OprEvent[], nowIso: string): Promise<string[]> {
    const out: Writes = { statements: [{ sql: "INSERT INTO deliveries (received_at, events, body) VALUES (?, ?, ?)", args: [nowIso, events.length, body] }], inserts: [] };
    const ids: string[] = [];
    // Built without an await, so concurrent deliveries see each other's index changes in call order.
    for (const event of events) ids.push(this.store(out, event, nowIso));
    flushInserts(out);
    this.totals.deliveries++;
    this.totals.eventsDelivered += events.length;
    try {
      // Answered only once on disk, as OMi answers only once it stored the events.
      await this.writer.commit(out.statements, { durable: true });
    } catch (error) {
      if (!this.closed) await this.loadIndex(); // the index ran ahead of a write that did not happen
      throw error;
    }
    return ids;
  }

  private store(out: Writes, event: OprEvent, nowIso: string): string {
    if (event.close_key_pattern) this.closeMatching(out, closeKeyRegex(event.close_key_pattern));
    const active = event.key ? this.activeByKey.get(event.key) : undefined;
    if (active !== undefined) {
      active.duplicateCount++;
      this.totals.duplicateCount++;
      const merged: StoredEvent = { ...event, id: active.id, received_at: active.receivedAt, duplicate_count: active.duplicateCount };
      const stillActive = merged.state !== "closed";
      if (!stillActive) this.activeByKey.delete(event.key);
      flushInserts(out); // the event merged into may be one inserted earlier in this delivery
      out.statements.push({ sql: "UPDATE omi_events SET document = ?, active = ? WHERE seq = ?", args: [JSON.stringify(merged), stillActive ? 1 : 0, seqOf(active.id)] });
      return active.id;
    }
    const seq = this.nextSeq++;
    const id = `omi-${seq}`;
    const stored: StoredEvent = { ...event, id, received_at: nowIso, duplicate_count: event.duplicate_count ?? 0 };
    this.totals.events++;
    this.totals.duplicateCount += stored.duplicate_count ?? 0;
    const isActive = event.state !== "closed";
    if (isActive && event.key) this.activeByKey.set(event.key, { id, receivedAt: nowIso, duplicateCount: stored.duplicate_count ?? 0 });
    out.inserts.push(seq, event.key || null, isActive ? 1 : 0, JSON.stringify(stored));
    return id;
  }

  /** Closes the active events whose key matches (in SQL, so an earlier insert of this batch is covered). */
  private closeMatching(out: Writes, pattern: RegExp): void {
    const matching = [...this.activeByKey].filter(([key]) => pattern.test(key));
    flushInserts(out);
    for (const [key, active] of matching) {
      this.activeByKey.delete(key);
      out.statements.push({ sql: "UPDATE omi_events SET active = 0, document = json_set(document, '$.state', 'closed') WHERE seq = ?", args: [seqOf(active.id)] });
    }
  }

  async events(): Promise<StoredEvent[]> {
    const rows = await this.client.execute("SELECT document FROM omi_events ORDER BY seq");
    return rows.rows.map((r) => JSON.parse(String(r["document"])) as StoredEvent);
  }

  async event(id: string): Promise<StoredEvent | null> {
    const rows = await this.client.execute({ sql: "SELECT document FROM omi_events WHERE seq = ?", args: [seqOf(id)] });
    const row = rows.rows[0];
    return row === undefined ? null : (JSON.parse(String(row["document"])) as StoredEvent);
  }

  /** An operator's change in OMi: applied to the event and recorded for back-sync. */
  async change(id: string, change: SimChange, nowIso: string): Promise<StoredEvent | null> {
    const current = await this.event(id);
    if (current === null) return null;
    if (change.state === "closed" && this.activeByKey.get(current.key)?.id === id) this.activeByKey.delete(current.key);
    else if (change.state !== undefined && change.state !== "closed" && current.key && !this.activeByKey.has(current.key)) {
      this.activeByKey.set(current.key, { id, receivedAt: current.received_at, duplicateCount: current.duplicate_count ?? 0 });
    }
    const updated: StoredEvent = {
      ...current,
      ...(change.state === undefined ? {} : { state: change.state }),
      ...(change.severity === undefined ? {} : { severity: change.severity }),
      custom_attributes: {
        ...current.custom_attributes,
        ...(change.assigned_user === undefined ? {} : { assigned_user: change.assigned_user }),
        ...(change.annotation === undefined ? {} : { last_annotation: change.annotation }),
      },
    };
    await this.client.batch(
      [
        { sql: "UPDATE omi_events SET document = ?, active = ? WHERE seq = ?", args: [JSON.stringify(updated), updated.state === "closed" ? 0 : 1, seqOf(id)] },
        { sql: "INSERT INTO changes (event_id, at, change) VALUES (?, ?, ?)", args: [id, nowIso, JSON.stringify(change)] },
      ],
      "write",
    );
    return updated;
  }

  async changes(afterSeq: number): Promise<Array<{ seq: number; eventId: string; at: string; change: SimChange }>> {
    const rows = await this.client.execute({ sql: "SELECT seq, event_id, at, change FROM changes WHERE seq > ? ORDER BY seq LIMIT 1000", args: [afterSeq] });
    return rows.rows.map((r) => ({ seq: Number(r["seq"]), eventId: String(r["event_id"]), at: String(r["at"]), change: JSON.parse(String(r["change"])) as SimChange }));
  }

  /** The raw deliveries after `afterSeq`, oldest first, at most `limit`; bodies only when asked (they are large). */
  async deliveries(afterSeq: number, options: { readonly limit: number; readonly withBody: boolean }): Promise<SimDelivery[]> {
    const columns = options.withBody ? "seq, received_at, events, length(body) AS bytes, body" : "seq, received_at, events, length(body) AS bytes";
    const rows = await this.client.execute({ sql: `SELECT ${columns} FROM deliveries WHERE seq > ? ORDER BY seq LIMIT ?`, args: [afterSeq, options.limit] });
    return rows.rows.map((r) => ({
      seq: Number(r["seq"]),
      receivedAt: String(r["received_at"]),
      events: Number(r["events"]),
      bodyChars: Number(r["bytes"]),
      ...(options.withBody ? { body: String(r["body"]) } : {}),
    }));
  }

  /** Counts for tests and demos: deliveries, events received in them, events stored, duplicates merged. */
  stats(): SimStats {
    return { ...this.totals };
  }
}

/** Data of an earlier simulator build (table `events`, keyed by id) moves into `omi_events` once. */
async function migrateEarlierLayout(client: Client): Promise<void> {
  const old = await client.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'");
  if (old.rows.length === 0) return;
  await client.batch(["INSERT INTO omi_events (seq, key, active, document) SELECT seq, key, active, document FROM events", "DROP TABLE events"], "write");
}

/** OMi close-key patterns use `<*>` for "anything"; everything else is literal. */
export function closeKeyRegex(pattern: string): RegExp {
  const parts = pattern.split("<*>").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`);
}
