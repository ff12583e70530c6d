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
import { createClient, type Client, type InStatement } from "@libsql/client";
import { join } from "node:path";
import type { OprEvent } from "../connector/events/event-record.ts";

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
  `CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, key TEXT, active INTEGER NOT NULL, document TEXT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS events_active_key ON events (key) WHERE active = 1`,
  `CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, events INTEGER NOT NULL, body TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, at TEXT NOT NULL, change TEXT NOT NULL)`,
];

export class SimStore {
  private constructor(private readonly client: Client) {}

  static async open(dataDir: string): Promise<SimStore> {
    const client = createClient({ url: `file:${join(dataDir, "omi-sim.db")}` });
    await client.execute("PRAGMA journal_mode = WAL");
    for (const sql of schema) await client.execute(sql);
    return new SimStore(client);
  }

  close(): void {
    this.client.close();
  }

  /** One POST: the raw body is recorded, then each event is stored or merged; returns the ids. */
  async deliver(body: string, events: readonly OprEvent[], nowIso: string): Promise<string[]> {
    const ids: string[] = [];
    const tx = await this.client.transaction("write");
    try {
      await tx.execute({ sql: "INSERT INTO deliveries (received_at, events, body) VALUES (?, ?, ?)", args: [nowIso, events.length, body] });
      for (const event of events) ids.push(await this.store(tx, event, nowIso));
      await tx.commit();
    } catch (error) {
      await tx.rollback();
      throw error;
    } finally {
      tx.close();
    }
    return ids;
  }

  private async store(tx: { execute(statement: InStatement): Promise<{ rows: ArrayLike<Record<string, unknown>> }> }, event: OprEvent, nowIso: string): Promise<string> {
    if (event.close_key_pattern) {
      const pattern = closeKeyRegex(event.close_key_pattern);
      const active = await tx.execute("SELECT id, key, document FROM events WHERE active = 1 AND key IS NOT NULL");
      for (const row of Array.from(active.rows)) {
        if (!pattern.test(String(row["key"]))) continue;
        const closed = { ...(JSON.parse(String(row["document"])) as StoredEvent), state: "closed" };
        await tx.execute({ sql: "UPDATE events SET active = 0, document = ? WHERE id = ?", args: [JSON.stringify(closed), String(row["id"])] });
      }
    }
    if (event.key) {
      const existing = await tx.execute({ sql: "SELECT id, document FROM events WHERE active = 1 AND key = ? LIMIT 1", args: [event.key] });
      const row = existing.rows[0];
      if (row !== undefined) {
        const previous = JSON.parse(String(row["document"])) as StoredEvent;
        const merged: StoredEvent = { ...previous, ...event, id: previous.id, received_at: previous.received_at, duplicate_count: (previous.duplicate_count ?? 0) + 1 };
        await tx.execute({ sql: "UPDATE events SET document = ?, active = ? WHERE id = ?", args: [JSON.stringify(merged), merged.state === "closed" ? 0 : 1, previous.id] });
        return previous.id;
      }
    }
    const seqRow = await tx.execute("SELECT coalesce(max(seq), 0) + 1 AS next FROM events");
    const seq = Number(seqRow.rows[0]!["next"]);
    const id = `omi-${seq}`;
    const stored: StoredEvent = { ...event, id, received_at: nowIso, duplicate_count: event.duplicate_count ?? 0 };
    await tx.execute({ sql: "INSERT INTO events (id, seq, key, active, document) VALUES (?, ?, ?, ?, ?)", args: [id, seq, event.key ?? null, event.state === "closed" ? 0 : 1, JSON.stringify(stored)] });
    return id;
  }

  async events(): Promise<StoredEvent[]> {
    const rows = await this.client.execute("SELECT document FROM events ORDER BY seq");
    return rows.rows.map((r) => JSON.parse(String(r["document"])) as StoredEvent);
  }

  async event(id: string): Promise<StoredEvent | null> {
    const rows = await this.client.execute({ sql: "SELECT document FROM events WHERE id = ?", args: [id] });
    const row = rows.rows[0];
    return row === undefined ? null : (JSON.parse(String(row["document"])) as StoredEvent);
  }

  /** An operator's change in OMi: applied to the event and recorded for back-sync. */
  async change(id: string, change: SimChange, nowIso: string): Promise<StoredEvent | null> {
    const current = await this.event(id);
    if (current === null) return null;
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
        { sql: "UPDATE events SET document = ?, active = ? WHERE id = ?", args: [JSON.stringify(updated), updated.state === "closed" ? 0 : 1, id] },
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

  /** Counts for tests and demos: deliveries, events received in them, events stored, duplicates merged. */
  async stats(): Promise<{ deliveries: number; eventsDelivered: number; events: number; duplicateCount: number }> {
    const d = await this.client.execute("SELECT count(*) AS n, coalesce(sum(events), 0) AS e FROM deliveries");
    const events = await this.events();
    return {
      deliveries: Number(d.rows[0]!["n"]),
      eventsDelivered: Number(d.rows[0]!["e"]),
      events: events.length,
      duplicateCount: events.reduce((n, e) => n + (e.duplicate_count ?? 0), 0),
    };
  }
}

/** OMi close-key patterns use `<*>` for "anything"; everything else is literal. */
export function closeKeyRegex(pattern: string): RegExp {
  const parts = pattern.split("<*>").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`);
}
