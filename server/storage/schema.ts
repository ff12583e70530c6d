/**
 * @module The libSQL schema, in drizzle's terms. `npm run db:generate` turns changes here into a
 * SQL migration in migrations/ (committed; never hand-edited), applied at boot.
 */
import { sqliteTable, text, integer, blob, primaryKey } from "drizzle-orm/sqlite-core";

/**
 * Facts about this data directory itself. `node_id` binds the directory to one node, so a node
 * started on another node's data refuses instead of impersonating it.
 */
export const nodeMeta = sqliteTable("node_meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});

/**
 * The Raft log after the latest snapshot. `checksum` is a CRC-32 over (index, term, type, data), so
 * corruption under SQLite's own checks (bit rot, a bad copy) is caught when the log is loaded.
 */
export const raftEntries = sqliteTable("raft_entries", {
  index: integer("idx").primaryKey(),
  term: integer("term").notNull(),
  /** 0 = normal, 1 = conf-change (see EntryType). */
  type: integer("type").notNull(),
  data: blob("data", { mode: "buffer" }).notNull(),
  checksum: integer("checksum").notNull(),
});

/** The single row (id = 1) of Raft hard state: current term, vote, commit index (Raft Fig. 2). */
export const raftHardState = sqliteTable("raft_hard_state", {
  id: integer("id").primaryKey(),
  term: integer("term").notNull(),
  votedFor: text("voted_for"),
  commit: integer("commit_index").notNull(),
});

/** The single row (id = 1) holding the latest snapshot the log was compacted to. */
export const raftSnapshot = sqliteTable("raft_snapshot", {
  id: integer("id").primaryKey(),
  index: integer("idx").notNull(),
  term: integer("term").notNull(),
  /** JSON ConfState: { voters, learners }. */
  confState: text("conf_state").notNull(),
  data: blob("data", { mode: "buffer" }).notNull(),
  checksum: integer("checksum").notNull(),
});

/**
 * The single row (id = 1) recording the last applied log index. State-machine tables are written in
 * the same transaction that moves it, so an entry is applied exactly once across crashes.
 */
export const raftApplied = sqliteTable("raft_applied", {
  id: integer("id").primaryKey(),
  applied: integer("applied_index").notNull(),
});

/**
 * The replicated key-value table's rows that the Raft log cannot give back (server/state/kv-table.ts):
 * values moved out of log entries that were compacted, and tombstones. Most live values are not
 * here: they stay in the raft_entries row that wrote them, so each value reaches the disk once.
 */
export const kv = sqliteTable("kv", {
  key: text("key").primaryKey(),
  /** The value, or null for a tombstone: the key was deleted at mod_index. */
  value: blob("value", { mode: "buffer" }),
  /** Log index of the entry that wrote this value or deleted the key. */
  modIndex: integer("mod_index").notNull(),
});

/** Connected servers: where each member of the group is reached. Raft's ConfState says who votes. */
export const members = sqliteTable("members", {
  nodeId: text("node_id").primaryKey(),
  address: text("address").notNull(),
  modIndex: integer("mod_index").notNull(),
});

/**
 * The replicated configuration (server/state/config-state.ts): part "draft" is the model being
 * edited, part "runtime" the package holders and node reports; each a JSON document.
 */
export const configState = sqliteTable("config_state", {
  part: text("part").primaryKey(),
  document: text("document").notNull(),
});

/** One row per deployment (JSON), written once; old ones are pruned past configLimits.deploymentsKept. */
export const configDeployments = sqliteTable("config_deployments", {
  version: integer("version").primaryKey(),
  document: text("document").notNull(),
});

/**
 * Undelivered events still in the log entry that carried them (server/state/outbox.ts): positions
 * [position, position + count) of entry log_index hold seqs [first_seq, ...). Turned into
 * outbox_events rows before compaction may delete the entry.
 */
export const outboxRuns = sqliteTable(
  "outbox_runs",
  {
    package: text("package").notNull(),
    firstSeq: integer("first_seq").notNull(),
    count: integer("count").notNull(),
    logIndex: integer("log_index").notNull(),
    position: integer("position").notNull(),
  },
  (t) => [primaryKey({ columns: [t.package, t.firstSeq] })],
);

/** The replicated event outbox (server/state/outbox.ts): one row per package. */
export const outboxPackages = sqliteTable("outbox_packages", {
  package: text("package").primaryKey(),
  nextSeq: integer("next_seq").notNull(),
  cursor: integer("cursor").notNull(),
  /** Dead letters dropped past deadLetterLimits.perPackageMax (oldest first): counted, never silent. */
  deadLettersDropped: integer("dead_letters_dropped").notNull().default(0),
});

/**
 * Events the target refused on their own (server/state/outbox.ts): moved out of the outbox by a
 * `dead-letter` op at log index `log_index`, kept until requeued or dropped past the per-package bound.
 * `event` is the event in its binary form (event-codec.ts); `status` and `reason` are the target's
 * answer (an HTTP status and an excerpt).
 */
export const outboxDeadLetters = sqliteTable(
  "outbox_dead_letters",
  {
    package: text("package").notNull(),
    seq: integer("seq").notNull(),
    id: text("id").notNull(),
    acceptedAtMs: integer("accepted_at_ms").notNull(),
    event: blob("event", { mode: "buffer" }).notNull(),
    status: integer("status").notNull(),
    reason: text("reason").notNull(),
    logIndex: integer("log_index").notNull(),
    atMs: integer("at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.package, t.seq] })],
);

/**
 * Undelivered events, deleted once the package's cursor passes them. The document is binary
 * (server/state/outbox.ts `storedRow`); rows written by earlier builds hold JSON text and still load.
 */
export const outboxEvents = sqliteTable(
  "outbox_events",
  {
    package: text("package").notNull(),
    seq: integer("seq").notNull(),
    document: blob("document").notNull(),
  },
  (t) => [primaryKey({ columns: [t.package, t.seq] })],
);

/** The dedup window, in the order keys entered it. */
export const outboxKeys = sqliteTable("outbox_keys", {
  ord: integer("ord").primaryKey(),
  key: text("key").notNull(),
  ids: text("ids").notNull(),
});
