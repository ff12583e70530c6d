/**
 * @module The replicated state machine: applies committed entries in log order to in-memory tables
 * (the authoritative view for reads). Its durable form is written by `flush()`, which the driver
 * calls now and then, always in the same transaction as the applied index it covers, so the SQL
 * tables, the log entries still stored and `raft_applied` always describe one point of the log:
 * entries after it are re-applied from the log after a restart, and each entry is applied exactly
 * once to the durable state. Key-value data is written once, in the log (kv-table.ts); boot replays
 * the stored entries up to the applied index over the kv rows.
 */
import type { Client } from "@libsql/client";
import type { SqlStatement } from "../storage/sql-writer.ts";
import type { Entry } from "../raft/types.ts";
import { assert, unreachable } from "../assert.ts";
import { decodeCommand, type Command } from "./command-codec.ts";
import { BinaryDecodeError, ByteReader, ByteWriter } from "./binary.ts";
import { KvTable, type KvFlushLimits, type KvRecord, type KvRow } from "./kv-table.ts";
import { ConfigState, type ConfigRows } from "./config-state.ts";
import { Outbox } from "./outbox.ts";
import { EntrySizes } from "./entry-sizes.ts";
import type { DeadLetterRow, OutboxRows } from "./outbox-types.ts";
import { CorruptLogError, entryChecksum, entryTypeCode } from "../storage/raft-log-store.ts";
import { outboxLimits, storageLimits } from "../constants.ts";

/** Per-entry outcome, handed to whoever proposed the entry. */
export type ApplyResult = { readonly index: number; readonly ok: true; readonly version?: number } | { readonly index: number; readonly ok: false; readonly error: string };

export interface ApplyOutcome {
  readonly results: readonly ApplyResult[];
}

/** 2 adds the configuration rows, 3 the outbox (JSON), 4 the outbox in binary, 5 its dead letters; older images are still read. */
const snapshotVersion = 5;

/** How much log upkeep each flush does (kv-table.ts); tests shrink them to reach every path. */
export type KvUpkeep = Omit<KvFlushLimits, "compactedThrough">;

export class ReplicatedState {
  readonly kv = new KvTable();
  readonly config = new ConfigState();
  readonly outbox = new Outbox();
  /** node id → "host:port" of every member the group has been told about. */
  readonly members = new Map<string, string>();
  /** Bumped whenever `members` changes, so the shell knows when to re-plan peer links. */
  membersVersion = 0;
  private membersFlushedVersion = 0;
  private appliedIndex = 0;
  private flushedIndex = 0;

  /** What the entries still on disk hold, for the outbox's retention bound. */
  private readonly entrySizes = new EntrySizes();

  constructor(
    private readonly upkeep: KvUpkeep = defaultUpkeep,
    /** Tests shrink it to spread a backlog's move into event rows over many flushes. */
    private readonly materializeEventsMax: number = outboxLimits.materializeEventsPerFlushMax,
    /** Log kept past the compaction point for undelivered events (tests: 0 moves them at once). */
    private readonly retainedLogBytesMax: number = outboxLimits.retainedLogBytesMax,
  ) {}

  get applied(): number {
    return this.appliedIndex;
  }

  /**
   * Boot: the tables written by earlier flushes (they match raft_applied by construction), then the
   * key-value writes of every log entry still stored up to `applied`, in log order.
   */
  async load(client: Client, options: { readonly applied: number; readonly compactedThrough: number }): Promise<void> {
    const { applied, compactedThrough } = options;
    assert(compactedThrough <= applied, "the compaction point is applied");
    const rows = await client.execute("SELECT key, value, mod_index FROM kv");
    const outboxRuns = await client.execute("SELECT package, first_seq, count, log_index, position FROM outbox_runs");
    const runs = outboxRuns.rows.map((r) => ({ name: String(r["package"]), firstSeq: Number(r["first_seq"]), count: Number(r["count"]), index: Number(r["log_index"]), position: Number(r["position"]) }));
    // The entries the outbox's runs point into, collected while the replay reads the log anyway.
    const runEntries = new Map<number, Uint8Array | undefined>(runs.map((r) => [r.index, undefined]));
    this.kv.beginReplay(rows.rows.map((r): KvRow => ({ key: String(r["key"]), value: r["value"] === null ? null : new Uint8Array(r["value"] as ArrayBuffer), modIndex: Number(r["mod_index"]) })));
    const storedCompacted = await this.replayStoredEntries(client, options, runEntries);
    const parts = await client.execute("SELECT part, document FROM config_state");
    const part = (name: string) => (parts.rows.find((r) => r["part"] === name)?.["document"] as string | undefined) ?? null;
    const deployments = await client.execute("SELECT document FROM config_deployments ORDER BY version");
    this.config.load({ draft: part("draft"), runtime: part("runtime"), deployments: deployments.rows.map((r) => String(r["document"])) });
    const outboxPackages = await client.execute("SELECT package, next_seq, cursor, dead_letters_dropped FROM outbox_packages");
    const outboxEntries = await client.execute("SELECT package, document FROM outbox_events ORDER BY package, seq");
    const outboxKeys = await client.execute("SELECT ord, key, ids FROM outbox_keys ORDER BY ord");
    const deadLetters = await client.execute("SELECT package, seq, id, accepted_at_ms, event, status, reason, log_index, at_ms FROM outbox_dead_letters ORDER BY package, seq");
    this.outbox.load({
      packages: outboxPackages.rows.map((r) => ({ name: String(r["package"]), nextSeq: Number(r["next_seq"]), cursor: Number(r["cursor"]), deadLettersDropped: Number(r["dead_letters_dropped"]) })),
      entries: outboxEntries.rows.map((r) => ({ name: String(r["package"]), document: rowDocument(r["document"]) })),
      keys: outboxKeys.rows.map((r) => ({ ord: Number(r["ord"]), key: String(r["key"]), ids: String(r["ids"]) })),
      runs,
      deadLetters: deadLetters.rows.map((r): DeadLetterRow => ({
        name: String(r["package"]),
        seq: Number(r["seq"]),
        id: String(r["id"]),
        acceptedAtMs: Number(r["accepted_at_ms"]),
        event: new Uint8Array(r["event"] as ArrayBuffer),
        status: Number(r["status"]),
        reason: String(r["reason"]),
        index: Number(r["log_index"]),
        atMs: Number(r["at_ms"]),
      })),
    }, (index) => runEntries.get(index));
    // Compacted entries that runs still read from were kept; the kv upkeep looks at them only later.
    const deletable = this.deletableThrough(compactedThrough);
    this.kv.endReplay(deletable, storedCompacted.filter((index) => index <= deletable));
    // As a flush would: entries at or below it no longer count toward the outbox's kept log.
    this.entrySizes.forgetThrough(deletable);
    const memberRows = await client.execute("SELECT node_id, address FROM members");
    this.replaceMembers(memberRows.rows.map((r) => [String(r["node_id"]), String(r["address"])]));
    this.membersFlushedVersion = this.membersVersion;
    this.appliedIndex = applied;
    this.flushedIndex = applied;
  }

  /** Replays the stored entries up to `applied` a page at a time; returns those at or below the compaction point. */
  private async replayStoredEntries(client: Client, options: { readonly applied: number; readonly compactedThrough: number }, runEntries: Map<number, Uint8Array | undefined>): Promise<number[]> {
    const { applied, compactedThrough } = options;
    const storedCompacted: number[] = [];
    let after = 0;
    for (;;) {
      const page = await client.execute({ sql: storedEntriesPage, args: [after, applied, storageLimits.replayPageRows] });
      for (const row of page.rows) {
        const index = Number(row["idx"]);
        const term = Number(row["term"]);
        const type = Number(row["type"]);
        const data = new Uint8Array(row["data"] as ArrayBuffer);
        // Every stored entry up to the applied index is committed: a bad one is lost data.
        if (entryChecksum(index, term, type, data) !== Number(row["checksum"])) throw new CorruptLogError(`stored log entry ${index} fails its checksum`);
        if (index <= compactedThrough) storedCompacted.push(index);
        this.entrySizes.note(index, data.length);
        if (runEntries.has(index)) runEntries.set(index, data);
        if (type === entryTypeCode.normal && data.length > 0) this.replayCommand(index, data);
        after = index;
      }
      if (page.rows.length < storageLimits.replayPageRows) return storedCompacted;
    }
  }

  /** Only key-value commands: every other table is written whole by each flush. */
  private replayCommand(index: number, data: Uint8Array): void {
    let command: Command;
    try {
      command = decodeCommand(data);
    } catch (error) {
      if (error instanceof BinaryDecodeError) return; // it failed when first applied too
      throw error;
    }
    if (command.kind === "kv-put") this.kv.put([command], index, data.length);
    else if (command.kind === "kv-put-batch") this.kv.put(command.items, index, data.length);
    else if (command.kind === "kv-delete") this.kv.delete(command.key, index);
    // Configuration is flushed whole with the applied index, never replayed from the log here.
  }

  apply(entries: readonly Entry[]): ApplyOutcome {
    const results: ApplyResult[] = [];
    for (const entry of entries) {
      assert(entry.index === this.appliedIndex + 1, () => `apply out of order: ${entry.index} after ${this.appliedIndex}`);
      this.appliedIndex = entry.index;
      this.entrySizes.note(entry.index, entry.data.length);
      if (entry.type !== "normal" || entry.data.length === 0) {
        results.push({ index: entry.index, ok: true });
        continue;
      }
      results.push(this.applyCommand(entry));
    }
    return { results };
  }

  /** Whether the log upkeep (deleting compacted entries, cleaning, tombstones) has work for a flush. */
  upkeepDue(compactedThrough: number): boolean {
    return this.outbox.lowestRunIndex() <= this.materializeThrough(compactedThrough) || this.kv.upkeepDue({ ...this.upkeep, compactedThrough: this.deletableThrough(compactedThrough) });
  }

  /**
   * Undelivered events stay in their log entries, past the compaction point too, while those kept
   * entries hold at most `retainedLogBytesMax` (so an event usually reaches the disk once, even
   * while OMi is away a while); beyond it the oldest runs move into event rows, and their entries go.
   */
  private materializeThrough(compactedThrough: number): number {
    return Math.min(compactedThrough, this.entrySizes.keepWithin(compactedThrough, this.retainedLogBytesMax));
  }

  /** Compacted entries may be deleted only below the lowest one an outbox run still reads from. */
  private deletableThrough(compactedThrough: number): number {
    return Math.min(compactedThrough, this.outbox.lowestRunIndex() - 1);
  }

  /** Changes applied since the last flush, by key; the driver flushes when this grows. */
  get unflushedCount(): number {
    return this.kv.dirtyCount + (this.membersVersion !== this.membersFlushedVersion ? 1 : 0) + (this.config.unflushed ? 1 : 0) + (this.outbox.unflushed ? 1 : 0);
  }

  get membersUnflushed(): boolean {
    return this.membersVersion !== this.membersFlushedVersion;
  }

  /** The applied index the SQL tables describe. */
  get flushed(): number {
    return this.flushedIndex;
  }

  /**
   * The SQL that brings the durable state to the applied index, and deletes log entries at or below
   * `compactedThrough` that no longer hold a live value. The caller must commit it together with
   * raft_applied = `applied`, in one transaction.
   */
  flush(out: SqlStatement[], options: { readonly compactedThrough: number }): void {
    assert(options.compactedThrough <= this.appliedIndex, "only applied entries are compacted");
    // The outbox first: what it leaves as runs decides which compacted entries the log keeps.
    this.outbox.flush(out, this.materializeThrough(options.compactedThrough), this.materializeEventsMax);
    const deletable = this.deletableThrough(options.compactedThrough);
    this.kv.flush(out, { ...this.upkeep, compactedThrough: deletable });
    this.entrySizes.forgetThrough(deletable);
    this.flushMembers(out);
    this.config.flush(out);
    this.flushedIndex = this.appliedIndex;
  }

  private flushMembers(out: SqlStatement[]): void {
    if (this.membersUnflushed) {
      out.push({ sql: "DELETE FROM members", args: [] });
      for (const [nodeId, address] of this.members) out.push({ sql: memberInsert, args: [nodeId, address, this.appliedIndex] });
      this.membersFlushedVersion = this.membersVersion;
    }
  }

  private applyCommand(entry: Entry): ApplyResult {
    let command: Command;
    try {
      command = decodeCommand(entry.data);
    } catch (error) {
      // Deterministic on every node: a malformed command is a failed result, never a crash loop.
      if (error instanceof BinaryDecodeError) return { index: entry.index, ok: false, error: error.message };
      throw error;
    }
    switch (command.kind) {
      case "kv-put":
        this.kv.put([command], entry.index, entry.data.length);
        break;
      case "kv-put-batch":
        this.kv.put(command.items, entry.index, entry.data.length);
        break;
      case "kv-delete":
        this.kv.delete(command.key, entry.index);
        break;
      case "member-set":
        this.members.set(command.nodeId, command.address);
        this.membersVersion++;
        break;
      case "member-remove":
        this.members.delete(command.nodeId);
        this.membersVersion++;
        break;
      case "config": {
        const result = this.config.apply(command.op, entry.index, [...this.members.keys()]);
        return result.ok ? { index: entry.index, ok: true, ...(result.version === undefined ? {} : { version: result.version }) } : { index: entry.index, ok: false, error: result.error };
      }
      case "outbox": {
        const result = this.outbox.apply(command.op, entry.index, { holders: this.config.assignments, deployed: this.config.deployedPackages, budgetBytes: this.config.outboxBudgets });
        return result.ok ? { index: entry.index, ok: true } : { index: entry.index, ok: false, error: result.error };
      }
      default:
        unreachable(command);
    }
    return { index: entry.index, ok: true };
  }

  private replaceMembers(rows: ReadonlyArray<[string, string]>): void {
    this.members.clear();
    for (const [nodeId, address] of rows) this.members.set(nodeId, address);
    this.membersVersion++;
  }

  /** The state image at the applied index, for Raft snapshots. */
  snapshot(): Uint8Array {
    const out = new ByteWriter(1024).u8(snapshotVersion).f64(this.appliedIndex).u32(this.kv.size);
    for (const [key, record] of this.kv.entries()) out.text(key).bytes(record.value).f64(record.modIndex);
    out.u32(this.members.size);
    for (const [nodeId, address] of this.members) out.text(nodeId).text(address);
    const config = this.config.toRows();
    out.text(config.draft ?? "").text(config.runtime ?? "").u32(config.deployments.length);
    for (const deployment of config.deployments) out.text(deployment);
    writeOutboxRows(out, this.outbox.toRows());
    return out.finish();
  }

  /** Replaces the state with a snapshot's; returns the SQL that rewrites the tables to match. */
  restore(data: Uint8Array, index: number): SqlStatement[] {
    const reader = new ByteReader(data);
    const version = reader.u8("snapshot version");
    assert(version >= 1 && version <= snapshotVersion, () => `unknown snapshot version ${version}`);
    assert(reader.f64("snapshot index") === index, "snapshot image does not match its metadata");
    const count = reader.u32("snapshot records");
    const rows: Array<[string, KvRecord]> = [];
    for (let i = 0; i < count; i++) rows.push([reader.text("key"), { value: reader.bytes("value"), modIndex: reader.f64("mod index") }]);
    const memberCount = reader.u32("snapshot members");
    const memberRows: Array<[string, string]> = [];
    for (let i = 0; i < memberCount; i++) memberRows.push([reader.text("node id"), reader.text("address")]);
    let config: ConfigRows = { draft: null, runtime: null, deployments: [] };
    if (version >= 2) {
      const draft = reader.text("config draft");
      const runtime = reader.text("config runtime");
      const deployments = Array.from({ length: reader.u32("config deployments") }, () => reader.text("config deployment"));
      config = { draft: draft === "" ? null : draft, runtime: runtime === "" ? null : runtime, deployments };
    }
    const outbox: OutboxRows = version >= 4 ? readOutboxRows(reader, version) : version === 3 ? (JSON.parse(reader.text("outbox")) as OutboxRows) : { packages: [], entries: [], keys: [] };
    reader.end("snapshot");
    // The caller deletes every log entry in the same transaction: all values go into kv rows.
    const statements: SqlStatement[] = [];
    this.kv.restore(rows, index, statements);
    this.entrySizes.reset();
    this.replaceMembers(memberRows);
    this.appliedIndex = index;
    this.flushMembers(statements);
    this.config.load(config);
    this.config.markAllDirty();
    statements.push({ sql: "DELETE FROM config_state", args: [] }, { sql: "DELETE FROM config_deployments", args: [] });
    this.config.flush(statements);
    this.outbox.load(outbox);
    this.outbox.markAllDirty();
    statements.push(...["outbox_packages", "outbox_events", "outbox_runs", "outbox_keys", "outbox_dead_letters"].map((table) => ({ sql: `DELETE FROM ${table}`, args: [] })));
    // Every log entry goes with this restore: all events become rows.
    this.outbox.flush(statements, index);
    this.flushedIndex = index;
    return statements;
  }
}

const storedEntriesPage = "SELECT idx, term, type, data, checksum FROM raft_entries WHERE idx > ? AND idx <= ? ORDER BY idx LIMIT ?";
const { compactionDeleteRowsMax, compactionScanStepsMax, cleanValuesMax, garbageSlackBytes, tombstoneExpiriesMax, tombstonesSlack } = storageLimits;
const defaultUpkeep: KvUpkeep = {
  deleteRowsMax: compactionDeleteRowsMax,
  scanStepsMax: compactionScanStepsMax,
  cleanValuesMax,
  garbageSlackBytes,
  tombstonesMax: tombstoneExpiriesMax,
  tombstonesSlack,
};

const memberInsert = "INSERT INTO members (node_id, address, mod_index) VALUES (?, ?, ?)";

/** Version 4's layout, then (5) each package's dropped count, in the same order, and the dead letters. */
function writeOutboxRows(out: ByteWriter, rows: OutboxRows): void {
  out.u32(rows.packages.length);
  for (const p of rows.packages) out.text(p.name).f64(p.nextSeq).f64(p.cursor);
  out.u32(rows.keys.length);
  for (const k of rows.keys) out.f64(k.ord).text(k.key).text(k.ids);
  out.u32(rows.entries.length);
  for (const e of rows.entries) {
    assert(typeof e.document !== "string", "the outbox's own rows are binary");
    out.text(e.name).bytes(e.document);
  }
  for (const p of rows.packages) out.f64(p.deadLettersDropped ?? 0);
  const deadLetters = rows.deadLetters ?? [];
  out.u32(deadLetters.length);
  for (const d of deadLetters) out.text(d.name).f64(d.seq).text(d.id).f64(d.acceptedAtMs).bytes(d.event).f64(d.status).text(d.reason).f64(d.index).f64(d.atMs);
}

function readOutboxRows(reader: ByteReader, version: number): OutboxRows {
  const packages = Array.from({ length: reader.u32("outbox packages") }, () => ({ name: reader.text("outbox package"), nextSeq: reader.f64("next seq"), cursor: reader.f64("cursor") }));
  const keys = Array.from({ length: reader.u32("outbox keys") }, () => ({ ord: reader.f64("key ord"), key: reader.text("key"), ids: reader.text("key ids") }));
  const entries = Array.from({ length: reader.u32("outbox entries") }, () => ({ name: reader.text("outbox package"), document: reader.bytes("outbox row") }));
  if (version < 5) return { packages, keys, entries };
  const withDropped = packages.map((p) => ({ ...p, deadLettersDropped: reader.f64("dead letters dropped") }));
  const deadLetters = Array.from({ length: reader.u32("dead letters") }, (): DeadLetterRow => ({
    name: reader.text("dead letter package"),
    seq: reader.f64("dead letter seq"),
    id: reader.text("dead letter id"),
    acceptedAtMs: reader.f64("dead letter accepted at"),
    event: reader.bytes("dead letter event"),
    status: reader.f64("dead letter status"),
    reason: reader.text("dead letter reason"),
    index: reader.f64("dead letter index"),
    atMs: reader.f64("dead letter time"),
  }));
  return { packages: withDropped, keys, entries, deadLetters };
}

/** A BLOB comes back from libSQL as an ArrayBuffer; a TEXT document is an earlier build's JSON. */
function rowDocument(value: unknown): Uint8Array | string {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value instanceof Uint8Array) return value;
  return String(value);
}
