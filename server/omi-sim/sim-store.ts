/**
 * @module The OMi receiver simulator's data, in a libSQL file: every raw delivery (so tests can count
 * duplicates), the events as OMi would hold them (keyed duplicate suppression, close-key handling),
 * and operator changes (close, acknowledge, assign...) for back-sync to pick up.
 *
 * OMi semantics kept here: an incoming event whose `key` matches an active (not closed) event
 * updates that event and grows its duplicate_count instead of creating a new one; an event's
 * `close_key_pattern` (with `<*>` as a wildcard, as in OMi) closes the active events whose key
 * matches, before the event itself is stored.
 *
 * An event is stored as a pointer into the delivery that brought it (delivery seq, position) plus
 * what can change (active, duplicate count); it is read back by parsing that body again. Only an
 * event that a later one merged into, or an operator changed, gets a document of its own. Writing
 * every event a second time as JSON was most of this process's cost under a benchmark's load, and
 * the simulator shares the machine with the group it measures.
 */
import { createClient, type Client } from "@libsql/client";
import { join } from "node:path";
import { assert } from "../assert.ts";
import type { OprEvent } from "../connector/events/event-record.ts";
import { multiRow, type MultiRowShape } from "../storage/multi-row.ts";
import { SqlWriter, type SqlStatement, type SqlValue } from "../storage/sql-writer.ts";
import { readDelivery, type DeliveryFormat } from "./delivery-body.ts";

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
  `CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, events INTEGER NOT NULL, body TEXT NOT NULL, format TEXT NOT NULL DEFAULT 'xml')`,
  // An event's id is "omi-<seq>": the rowid is the one key, so an insert appends to one B-tree. The
  // active events by key are indexed in memory only (read once at open): an SQL index on keys from
  // hundreds of sources dirtied a page per source in every delivery, tripling the bytes written.
  // `document` is null while the event is as delivered (see the module comment).
  `CREATE TABLE IF NOT EXISTS stored_events (seq INTEGER PRIMARY KEY, key TEXT, active INTEGER NOT NULL, duplicates INTEGER NOT NULL, delivery INTEGER, position INTEGER, document TEXT)`,
  `CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, at TEXT NOT NULL, change TEXT NOT NULL)`,
];

/**
 * One delivery's writes: statements in order, and new events waiting to be inserted: the usual
 * ones (active, no duplicate count) as a run of consecutive ids and positions, the rest as rows.
 */
interface Writes {
  readonly statements: SqlStatement[];
  inserts: SqlValue[];
  run: InsertRun | null;
}

/** New events with ids firstSeq, firstSeq+1, ... from positions firstPosition, ... of one delivery. */
interface InsertRun {
  readonly firstSeq: number;
  readonly delivery: number;
  readonly firstPosition: number;
  readonly keys: Array<string | null>;
}

/**
 * A run goes as one statement whatever its length: SQLite expands the keys' JSON array itself,
 * which measured half the cost per event of binding six values per row.
 */
const insertRunSql =
  "INSERT INTO stored_events (seq, key, active, duplicates, delivery, position) SELECT ?1 + j.key, j.value, 1, 0, ?2, ?3 + j.key FROM json_each(?4) AS j";

const insertShape: MultiRowShape = { head: "INSERT INTO stored_events (seq, key, active, duplicates, delivery, position) VALUES", columns: 6, tail: "" };

/** The rowid behind an id ("omi-17" → 17); -1 for anything else, which matches no row. */
function seqOf(id: string): number {
  const match = /^omi-([1-9][0-9]{0,15})$/.exec(id);
  return match === null ? -1 : Number(match[1]);
}

/** Writes out the pending new events: the run as one statement, the rest in a few multi-row ones. */
function flushInserts(out: Writes): void {
  if (out.run !== null) {
    const { firstSeq, delivery, firstPosition, keys } = out.run;
    out.statements.push({ sql: insertRunSql, args: [firstSeq, delivery, firstPosition, JSON.stringify(keys)] });
    out.run = null;
  }
  if (out.inserts.length === 0) return;
  multiRow(insertShape, out.inserts, out.statements);
  out.inserts = [];
}

/** Extends the run if the event continues it, else starts one (after writing out the last). */
function insertInRun(out: Writes, seq: number, key: string | null, origin: Origin): void {
  const run = out.run;
  if (run !== null && run.delivery === origin.delivery && run.firstSeq + run.keys.length === seq && run.firstPosition + run.keys.length === origin.position) {
    run.keys.push(key);
    return;
  }
  flushInserts(out);
  out.run = { firstSeq: seq, delivery: origin.delivery, firstPosition: origin.position, keys: [key] };
}

/** What a merge needs of an active keyed event; the rest of the stored document is overwritten. */
interface ActiveEvent {
  readonly id: string;
  readonly receivedAt: string;
  duplicateCount: number;
}

/** Where a new event of a delivery comes from. */
interface Origin {
  readonly delivery: number;
  readonly position: number;
  readonly nowIso: string;
}

/** One stored event's row, with its delivery's time. */
interface EventRow {
  readonly seq: number;
  readonly active: boolean;
  readonly duplicates: number;
  readonly delivery: number | null;
  readonly position: number | null;
  readonly document: string | null;
  readonly receivedAt: string | null;
}

/** Parsed deliveries kept for reading events back (each up to a few thousand events). */
const readDeliveriesKept = 8;

const eventColumns = "e.seq, e.active, e.duplicates, e.delivery, e.position, e.document, d.received_at FROM stored_events e LEFT JOIN deliveries d ON d.seq = e.delivery";

function eventRow(row: Record<string, unknown>): EventRow {
  const orNull = <T>(value: unknown, convert: (value: unknown) => T): T | null => (value === null || value === undefined ? null : convert(value));
  return {
    seq: Number(row["seq"]),
    active: Number(row["active"]) === 1,
    duplicates: Number(row["duplicates"]),
    delivery: orNull(row["delivery"], Number),
    position: orNull(row["position"], Number),
    document: orNull(row["document"], String),
    receivedAt: orNull(row["received_at"], String),
  };
}

export type DeliverResult = { readonly ok: true; readonly ids: string[] } | { readonly ok: false; readonly error: string };

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
 * Writes go through an in-memory index of the active keyed events and the next sequence numbers, so
 * one delivery is one batch of inserts and updates in one transaction (no read per event): a
 * benchmark pushes tens of thousands of events a second through this process on the same machine
 * as the group it measures. The index is rebuilt from the file at open and after a failed write.
 */
export class SimStore {
  private activeByKey = new Map<string, ActiveEvent>();
  private nextSeq = 1;
  private nextDelivery = 1;
  /** Kept with the index, so a poll for counts does not scan every stored event. */
  private totals = { deliveries: 0, eventsDelivered: 0, events: 0, duplicateCount: 0 };
  /** A delivery still in flight when the store closes fails; it must not reopen the closed client. */
  private closed = false;

  private readonly reader: DeliveryReader;

  /**
   * Deliveries are written through the node's write path (prepared statements kept, WAL synced off
   * this thread): preparing each multi-row insert anew was a third of this process's CPU under load.
   * Reads and the rare operator change use the client.
   */
  private constructor(
    private readonly client: Client,
    private readonly writer: SqlWriter,
  ) {
    this.reader = new DeliveryReader(client);
  }

  static async open(dataDir: string): Promise<SimStore> {
    const path = join(dataDir, "omi-sim.db");
    const client = createClient({ url: `file:${path}` });
    await client.execute("PRAGMA journal_mode = WAL");
    for (const sql of schema) await client.execute(sql);
    await migrateEarlierLayouts(client);
    const store = new SimStore(client, new SqlWriter(path));
    store.loadIndex();
    return store;
  }

  /** Synchronous, on the writer's connection: no delivery can run between the reads and the reset. */
  private loadIndex(): void {
    const one = (sql: string) => this.writer.rows(sql)[0]!;
    const next = one("SELECT (SELECT coalesce(max(seq), 0) + 1 FROM stored_events) AS event, (SELECT coalesce(max(seq), 0) + 1 FROM deliveries) AS delivery");
    const d = one("SELECT count(*) AS n, coalesce(sum(events), 0) AS e FROM deliveries");
    const e = one("SELECT count(*) AS n, coalesce(sum(duplicates), 0) AS d FROM stored_events");
    this.nextSeq = Number(next["event"]);
    this.nextDelivery = Number(next["delivery"]);
    this.totals = { deliveries: Number(d["n"]), eventsDelivered: Number(d["e"]), events: Number(e["n"]), duplicateCount: Number(e["d"]) };
    this.activeByKey = new Map();
    const active = this.writer.rows(
      "SELECT e.seq, e.key, e.duplicates, coalesce(d.received_at, json_extract(e.document, '$.received_at')) AS received_at FROM stored_events e LEFT JOIN deliveries d ON d.seq = e.delivery WHERE e.active = 1 AND e.key IS NOT NULL",
    );
    for (const row of active) {
      this.activeByKey.set(String(row["key"]), { id: `omi-${Number(row["seq"])}`, receivedAt: String(row["received_at"]), duplicateCount: Number(row["duplicates"]) });
    }
  }

  /** Closed: requests still in flight fail (the simulator is stopping). */
  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    this.writer.close();
    this.client.close();
  }

  /**
   * One POST: the body is read (a 400's message if it does not parse, and nothing stored), recorded
   * as received, then each event is stored or merged; returns the ids. The index and counts run
   * ahead of the write and are reloaded if it fails.
   */
  async deliver(body: string, format: DeliveryFormat, nowIso: string): Promise<DeliverResult> {
    const read = readDelivery(format, body);
    if (!read.ok) return read;
    const delivery = this.nextDelivery++;
    const out: Writes = { statements: [{ sql: "INSERT INTO deliveries (seq, received_at, events, body, format) VALUES (?, ?, ?, ?, ?)", args: [delivery, nowIso, read.events.length, body, format] }], inserts: [], run: null };
    const ids: string[] = [];
    // Built without an await, so concurrent deliveries see each other's index changes in call order.
    for (let position = 0; position < read.events.length; position++) ids.push(this.store(out, read.events[position]!, { delivery, position, nowIso }));
    flushInserts(out);
    this.totals.deliveries++;
    this.totals.eventsDelivered += read.events.length;
    let durable: Promise<void>;
    try {
      durable = this.writer.commit(out.statements, { durable: true });
    } catch (error) {
      // The transaction was rolled back: the index ran ahead of a write that did not happen.
      if (!this.closed) this.loadIndex();
      throw error;
    }
    // Answered only once on disk, as OMi answers only once it stored the events. A failed sync
    // fails the POST (the sender retries), but the rows are committed and the index matches them.
    await durable;
    return { ok: true, ids };
  }

  private store(out: Writes, event: OprEvent, origin: Origin): string {
    if (event.close_key_pattern) this.closeMatching(out, closeKeyRegex(event.close_key_pattern));
    const active = event.key ? this.activeByKey.get(event.key) : undefined;
    if (active !== undefined) {
      active.duplicateCount++;
      this.totals.duplicateCount++;
      const merged: StoredEvent = { ...event, id: active.id, received_at: active.receivedAt, duplicate_count: active.duplicateCount };
      const stillActive = merged.state !== "closed";
      if (!stillActive) this.activeByKey.delete(event.key);
      flushInserts(out); // the event merged into may be one inserted earlier in this delivery
      out.statements.push({
        sql: "UPDATE stored_events SET document = ?, active = ?, duplicates = ? WHERE seq = ?",
        args: [JSON.stringify(merged), stillActive ? 1 : 0, active.duplicateCount, seqOf(active.id)],
      });
      return active.id;
    }
    const seq = this.nextSeq++;
    const id = `omi-${seq}`;
    const duplicates = event.duplicate_count ?? 0;
    this.totals.events++;
    this.totals.duplicateCount += duplicates;
    const isActive = event.state !== "closed";
    if (isActive && event.key) this.activeByKey.set(event.key, { id, receivedAt: origin.nowIso, duplicateCount: duplicates });
    if (isActive && duplicates === 0) insertInRun(out, seq, event.key || null, origin);
    else out.inserts.push(seq, event.key || null, isActive ? 1 : 0, duplicates, origin.delivery, origin.position);
    return id;
  }

  /**
   * Closes the active events whose key matches (in SQL, so an earlier insert of this batch is
   * covered). An event still as delivered reads back closed from `active` alone.
   */
  private closeMatching(out: Writes, pattern: RegExp): void {
    const matching = [...this.activeByKey].filter(([key]) => pattern.test(key));
    flushInserts(out);
    for (const [key, active] of matching) {
      this.activeByKey.delete(key);
      out.statements.push({ sql: "UPDATE stored_events SET active = 0, document = json_set(document, '$.state', 'closed') WHERE seq = ?", args: [seqOf(active.id)] });
    }
  }

  /** The events in id order: all of them, or a page (`afterSeq`: after omi-<afterSeq>; at most `limit`). */
  async events(page: { readonly afterSeq: number; readonly limit: number } = { afterSeq: 0, limit: -1 }): Promise<StoredEvent[]> {
    const rows = await this.client.execute({ sql: `SELECT ${eventColumns} WHERE e.seq > ? ORDER BY e.seq LIMIT ?`, args: [page.afterSeq, page.limit] });
    const events: StoredEvent[] = [];
    for (const row of rows.rows) events.push(await this.reader.stored(eventRow(row)));
    return events;
  }

  async event(id: string): Promise<StoredEvent | null> {
    const rows = await this.client.execute({ sql: `SELECT ${eventColumns} WHERE e.seq = ?`, args: [seqOf(id)] });
    const row = rows.rows[0];
    return row === undefined ? null : this.reader.stored(eventRow(row));
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
        { sql: "UPDATE stored_events SET document = ?, active = ? WHERE seq = ?", args: [JSON.stringify(updated), updated.state === "closed" ? 0 : 1, seqOf(id)] },
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

/**
 * Reads events back from their deliveries, keeping the last few deliveries read (a delivery never
 * changes once stored): a listing goes in seq order, so the events of one delivery come together,
 * and an operator's changes mostly touch recent events.
 */
class DeliveryReader {
  /** Least recently used first. */
  private readonly cached = new Map<number, readonly OprEvent[]>();

  constructor(private readonly client: Client) {}

  async stored(row: EventRow): Promise<StoredEvent> {
    if (row.document !== null) return JSON.parse(row.document) as StoredEvent;
    assert(row.delivery !== null && row.position !== null && row.receivedAt !== null, () => `event omi-${row.seq} has neither a document nor a delivery`);
    const event = (await this.eventsOf(row.delivery))[row.position];
    assert(event !== undefined, () => `delivery ${row.delivery} has no event at ${row.position}`);
    // As delivered, with what the store changed since: an event closed by a close key has no document.
    return { ...event, id: `omi-${row.seq}`, received_at: row.receivedAt, duplicate_count: row.duplicates, ...(row.active ? {} : { state: "closed" }) };
  }

  private async eventsOf(delivery: number): Promise<readonly OprEvent[]> {
    const hit = this.cached.get(delivery);
    if (hit !== undefined) {
      this.cached.delete(delivery);
      this.cached.set(delivery, hit);
      return hit;
    }
    const rows = await this.client.execute({ sql: "SELECT body, format FROM deliveries WHERE seq = ?", args: [delivery] });
    const row = rows.rows[0];
    assert(row !== undefined, () => `delivery ${delivery} is gone`);
    // delivery-body.ts keeps accepting what it once accepted; a body that no longer reads is a bug there.
    const read = readDelivery(String(row["format"]) as DeliveryFormat, String(row["body"]));
    assert(read.ok, () => `delivery ${delivery} no longer parses: ${read.ok ? "" : read.error}`);
    const events = read.events;
    if (this.cached.size >= readDeliveriesKept) this.cached.delete(this.cached.keys().next().value!);
    this.cached.set(delivery, events);
    return events;
  }
}

/**
 * Data of earlier simulator builds moves into `stored_events` once, each event keeping its own
 * document: table `events` (keyed by id), then `omi_events` (keyed by seq). Deliveries gain the
 * format their bodies are read back with; an earlier build's are labelled xml whatever they were,
 * which is harmless because their events keep their documents and their bodies are never read back.
 */
async function migrateEarlierLayouts(client: Client): Promise<void> {
  const columns = await client.execute("SELECT name FROM pragma_table_info('deliveries') WHERE name = 'format'");
  if (columns.rows.length === 0) await client.execute("ALTER TABLE deliveries ADD COLUMN format TEXT NOT NULL DEFAULT 'xml'");
  const tables = await client.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'omi_events')");
  for (const row of tables.rows) {
    const table = String(row["name"]);
    await client.batch(
      [
        `INSERT INTO stored_events (seq, key, active, duplicates, document) SELECT seq, key, active, coalesce(json_extract(document, '$.duplicate_count'), 0), document FROM ${table}`,
        `DROP TABLE ${table}`,
      ],
      "write",
    );
  }
}

/** OMi close-key patterns use `<*>` for "anything"; everything else is literal. */
export function closeKeyRegex(pattern: string): RegExp {
  const parts = pattern.split("<*>").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`);
}
