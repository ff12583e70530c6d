/**
 * @module Every limit and tuning figure of opsconn in one place. Relations between them are asserted
 * at load, so a bad edit fails at start-up rather than in production.
 */
import { assert } from "./assert.ts";

/** Raft core limits (see RaftLimits in server/raft/types.ts for the meaning of each). */
export const raftLimits = {
  appendBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  inflightBytesMax: 32 * 1024 * 1024,
  uncommittedBytesMax: 64 * 1024 * 1024,
  readIndexPendingMax: 4096,
} as const;

assert(raftLimits.appendBytesMax <= raftLimits.inflightBytesMax, "one append must fit the in-flight byte window");
assert(raftLimits.inflightMessagesMax >= 1, "pipelining needs at least one in-flight message");

/** Raft core tuning (server/raft). Ticks are the shell's timer unit, not milliseconds. */
export const raftTuning = {
  /** Default election timeout base; the effective timeout is randomized in [e, 2e) (Raft §5.2). */
  electionTicks: 10,
  /** Default heartbeat interval; must be well below the election timeout (Raft §5.6 timing). */
  heartbeatTicks: 1,
  /** Entries kept behind a snapshot so slightly lagging followers still get `app`, not `snap`. */
  snapshotTrailingEntries: 1024,
  /** Bytes of committed entries handed out in one Ready (at least one entry always). */
  applyBytesMax: 4 * 1024 * 1024,
  /** A `snap` unanswered for this many election timeouts is presumed lost and sent again. */
  snapshotRetryElections: 2,
  /** Longest node id accepted in an encoded ConfChange (bytes of UTF-8). */
  nodeIdBytesMax: 255,
} as const;

assert(raftTuning.heartbeatTicks < raftTuning.electionTicks, "heartbeats must come faster than election timeouts");
assert(raftTuning.applyBytesMax >= raftLimits.appendBytesMax, "a Ready applies at least what one append carries");

/**
 * Raft timing in the node shell. Failover = the followers' election timeout + one (pre)vote round
 * trip + the new leader's first commit. Ticks of 25 ms with a 12-tick base give randomized election
 * timeouts of 300-600 ms (Raft §5.2: randomized in [e, 2e)), which keeps failover well under a
 * second, while heartbeats every 2 ticks (50 ms) leave 6+ missed heartbeats of slack before a
 * follower gives up: an fsync stall or a GC pause of 100-200 ms does not start an election.
 */
export const raftTiming = {
  tickMs: 25,
  electionTicks: 12,
  heartbeatTicks: 2,
  /**
   * Snapshot (and compact the log) after this many applied entries (etcd's default) or this many
   * bytes of applied entry data, whichever comes first. A snapshot serializes the whole state on
   * the event loop: too often stalls writes (measured: every 10,000 entries tripled p99 at 256
   * clients); the byte bound keeps the core's in-memory log small when entries are large.
   */
  snapshotEveryEntries: 100_000,
  snapshotEveryBytes: 64 * 1024 * 1024,
} as const;

assert(raftTiming.heartbeatTicks * 4 <= raftTiming.electionTicks, "several heartbeats must fit in one election timeout");

/** The HA group's request handling (server/node/group.ts). */
export const groupLimits = {
  /** A client request (write, linearizable read, membership step) gets an answer within this. */
  requestDeadlineMs: 10_000,
  /**
   * A request forwarded to the leader gets this long before it is reported "outcome unknown" (504):
   * several election timeouts, so a leader that froze or died is replaced meanwhile, and clients
   * learn within seconds rather than at the full request deadline.
   */
  forwardTimeoutMs: 2_000,
  /** Between attempts while no leader is known (an election is under way). */
  leaderWaitStepMs: 20,
  /** Attempts at finding a leader within one deadline; bounds the loop. */
  leaderAttemptsMax: 1000,
  catchUpDeadlineMs: 60_000,
  /** A learner never heard from within this is reported unreachable instead of waited for. */
  learnerContactMs: 3_000,
} as const;

assert(groupLimits.leaderAttemptsMax * groupLimits.leaderWaitStepMs >= groupLimits.requestDeadlineMs, "attempts must cover the deadline");

/** The replicated key-value API. */
export const kvLimits = {
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
  batchItemsMax: 10_000,
} as const;

/**
 * When the state machine writes its tables (server/state/replicated-state.ts): values reach the disk
 * once in the Raft log; the tables follow in batches. These bound how much log a restart replays.
 */
export const stateFlush = {
  /**
   * Changed keys since the last flush. A flush runs on the node's one thread and blocks it while
   * SQLite writes the rows: 20k-row flushes took ~60 ms and set the p99; 2k rows halved the p99 at
   * 256 clients (99 -> 57 ms, A/B median of 4) for the same rows written in all.
   */
  changesMax: 2_000,
  intervalMs: 1_000,
} as const;

/**
 * The environment a node (and the OMi simulator) is meant to run with: the README's run
 * instructions, `npm start` and the test and benchmark launchers all use it. Bun's allocator
 * (mimalloc) hands memory that stayed free for 100 ms back to the OS, and under a steady event load
 * much of it is needed again soon after, at a page fault per 4 KiB. Keeping it cut page faults per
 * event by about 40% and CPU per event by about 7% in the events benchmark (4 alternating pairs:
 * 104-115k against 95-109k batched events/s); the price is that a process keeps its peak memory
 * (bounded by the outbox budgets) instead of shrinking after a burst. An environment variable
 * because mimalloc reads its options only when the process starts.
 */
export const runtimeEnvironment = { MIMALLOC_PURGE_DELAY: "-1" } as const;

/** The libSQL write path (server/storage/sql-writer.ts). */
export const storageLimits = {
  /**
   * SQLite page size for new data files. Log entries carry whole batches (a 100-item batch is
   * about 26 KB): with 4 KiB pages each spans 7 overflow pages, each with its own WAL frame,
   * checksum and checkpoint copy.
   */
  pageBytes: 8192,
  /** Prepared statements kept per connection; hot statements have stable text (multi-row.ts). */
  preparedStatementsMax: 256,
  /**
   * SQLite page cache per write connection (filled lazily; idle nodes do not pay it). The 2 MiB
   * default made upserts into a large kv table 35-40% slower (measured: 62-68k vs 84-91k rows/s).
   */
  pageCacheBytes: 64 * 1024 * 1024,
  /**
   * Compacted log entries deleted per flush (server/state/kv-table.ts): one DELETE of 100k rows held
   * the node's thread for about 240 ms.
   */
  compactionDeleteRowsMax: 1000,
  /** Compacted entries examined per flush: mostly ones that stay because they hold live values. */
  compactionScanStepsMax: 100_000,
  /** Live values moved out of mostly-dead compacted entries per flush (cleaning). */
  cleanValuesMax: 2_000,
  /** Garbage kept in retained log entries beyond the live size before cleaning starts. */
  garbageSlackBytes: 16 * 1024 * 1024,
  /** Tombstones deleted per flush once no older log entry is left. */
  tombstoneExpiriesMax: 1_000,
  /** Tombstones kept before old retained entries are cleaned so that they can expire. */
  tombstonesSlack: 10_000,
  /** Log entries read per query when boot replays the stored log. */
  replayPageRows: 1_000,
} as const;

/** HTTP limits. */
export const httpLimits = {
  /** Largest request body accepted anywhere (413 beyond). */
  bodyBytesMax: 16 * 1024 * 1024,
} as const;

/** Node process lifecycle. */
export const lifecycle = {
  /** SIGTERM/SIGINT: everything is closed within this bound, or the process exits anyway. */
  shutdownGraceMs: 5000,
} as const;

export const defaultHttpPort = 30005;

/** WebAssembly kernels (server/wasm/). */
export const wasmLimits = {
  /** Records in one hashBatch call; the offsets and output tables grow with it. */
  hashBatchRecordsMax: 1_000_000,
  /** Record bytes (sum of lengths) in one hashBatch call; bounds how far linear memory grows. */
  hashBatchDataBytesMax: 64 * 1024 * 1024,
  /** Linear memory may never grow past this (the wasm32 ceiling is 4 GiB). */
  memoryBytesMax: 256 * 1024 * 1024,
} as const;

assert(
  16 + 12 * wasmLimits.hashBatchRecordsMax + 8 + wasmLimits.hashBatchDataBytesMax < wasmLimits.memoryBytesMax - 1024 * 1024,
  "the largest hash batch (header, offsets, outputs, data) must fit linear memory with room for static data",
);
assert(wasmLimits.memoryBytesMax <= 4 * 1024 * 1024 * 1024 - 65536, "wasm32 linear memory ends below 4 GiB");

/** Peer-link transport (server/transport/): frames, queues, handshake and reconnect figures. */
export const transportLimits = {
  /**
   * Largest frame either side encodes or accepts; a `snap` message must fit in one frame, so this
   * bounds the state a follower can catch up from by snapshot.
   */
  frameBytesMax: 1024 * 1024 * 1024,
  /**
   * Largest WebSocket message. A bigger frame travels as consecutive `fragment` frames of at most
   * this size, interleaved with other traffic, so a snapshot neither needs a giant message nor
   * holds up heartbeats and forwarded requests behind it.
   */
  messageBytesMax: 4 * 1024 * 1024,
  /** Room for a fragment's header on top of messageBytesMax. */
  fragmentHeaderBytesMax: 64,
  /** Large frames waiting to go out as fragments on one connection; beyond this they are dropped. */
  fragmentedFramesMax: 8,
  /** Flush packs queued Raft messages into frames of about this size (one bigger message goes alone). */
  frameBatchBytesTarget: 1024 * 1024,
  /** Raft messages in one frame, and entries in one `app` message: bounds decode loops. */
  frameMessagesMax: 65_536,
  entriesPerMessageMax: 1_000_000,
  /** Node ids in one encoded ConfState (voters + learners each). */
  confStateNodesMax: 1024,
  /** Bytes of a heartbeat's ReadIndex context string. */
  contextBytesMax: 1024,
  /** Bytes of the human-readable reason in an auth-fail frame. */
  reasonBytesMax: 256,
  /** Frames before authentication are tiny; anything bigger is refused unread. */
  handshakeFrameBytesMax: 1024,
  /** Random challenge bytes per side per connection; HMAC-SHA256 proofs are 32 bytes. */
  nonceBytes: 32,
  /** Shortest cluster secret accepted (bytes); HMAC keys shorter than this are guessable. */
  secretBytesMin: 16,
  /** A connection that has not authenticated within this bound is closed. */
  handshakeTimeoutMs: 5000,
  /** Unauthenticated inbound connections at once; more are closed at once (cheap DoS bound). */
  handshakesPendingMax: 64,
  /** Raft messages waiting for one peer; beyond this new messages are dropped and counted. */
  queueMessagesMax: 4096,
  /** Encoded bytes waiting for one peer (same drop rule); one largest snapshot plus appends. */
  queueBytesMax: 1024 * 1024 * 1024 + 96 * 1024 * 1024,
  /** Stop flushing into a socket whose unsent buffer exceeds this (WebSocket backpressure). */
  socketBufferedBytesMax: 8 * 1024 * 1024,
  /** An idle link sends an empty raft frame this often, so the other side knows it is alive. */
  keepaliveIntervalMs: 1000,
  /** A link that has received nothing for this long is closed (vanished peer, half-open TCP). */
  peerSilenceMsMax: 10_000,
  /** Re-check a backpressured socket after this delay. */
  backpressureRetryMs: 5,
  /** Reconnect backoff: base doubles per failed attempt up to the max; jitter is in [d/2, d). */
  reconnectDelayMinMs: 50,
  reconnectDelayMaxMs: 5000,
  /** Outstanding app requests across all peers. */
  appRequestsPendingMax: 4096,
  /** Items in one app frame: bounds the decode loop. */
  frameAppItemsMax: 8192,
  /** App items (our requests and our answers to the peer's) waiting for one peer's next flush. */
  appQueueItemsMax: 8192,
  appQueueBytesMax: 256 * 1024 * 1024,
  /** Longest timeout a caller may ask of request(). */
  appRequestTimeoutMsMax: 60_000,
} as const;

assert(transportLimits.frameBatchBytesTarget <= transportLimits.frameBytesMax, "a batch target beyond the frame limit can never be met");
assert(raftLimits.appendBytesMax < transportLimits.frameBatchBytesTarget * 2, "one full append should fit about one batch");
assert(transportLimits.frameBytesMax <= transportLimits.queueBytesMax, "the queue must hold at least one largest frame");
assert(transportLimits.messageBytesMax < transportLimits.frameBytesMax, "fragments are smaller than the frames they carry");
assert(transportLimits.frameBatchBytesTarget <= transportLimits.messageBytesMax, "an ordinary batch fits one WebSocket message");
assert(transportLimits.appQueueItemsMax >= 2 * transportLimits.appRequestsPendingMax, "room for our requests and the answers to a peer's");
assert(transportLimits.appQueueItemsMax <= transportLimits.frameAppItemsMax, "one flush of a full app queue needs at most one frame per batch");
assert(raftLimits.inflightBytesMax <= transportLimits.queueBytesMax, "the queue must hold a full pipelining window of appends");
assert(raftLimits.inflightMessagesMax <= transportLimits.queueMessagesMax, "the queue must hold a full pipelining window of messages");
assert(raftTuning.nodeIdBytesMax <= transportLimits.handshakeFrameBytesMax / 4, "a hello with two node ids must fit a handshake frame");
assert(transportLimits.reconnectDelayMinMs <= transportLimits.reconnectDelayMaxMs, "backoff floor above its ceiling");
assert(transportLimits.keepaliveIntervalMs * 3 <= transportLimits.peerSilenceMsMax, "a live peer sends several keepalives per silence window");

/**
 * The configuration model (server/config/model/). Bounds keep validation, export and every loop
 * over a model short, and keep one model small enough to replicate as a single log entry.
 */
export const configLimits = {
  policiesMax: 1000,
  packagesMax: 256,
  aspectsMax: 256,
  templatesMax: 256,
  /** Nodes of the connected server: an HA group is a handful of nodes, never thousands. */
  nodesMax: 64,
  rulesPerPolicyMax: 1000,
  /** Entries of one reference list: policies of a package, packages of an aspect, aspects of a template. */
  referencesMax: 256,
  /** Keys of one map: mapping fields, defaults, a rule's `set`. */
  mapEntriesMax: 256,
  syncItemsPerPackageMax: 256,
  /** Pull policies: poll at least daily; a request may take at most 5 minutes, 10 s unless set. */
  pullIntervalSecMax: 86_400,
  pullTimeoutSecMax: 300,
  pullTimeoutSecDefault: 10,
  /** Load-balancing weight of an HA package (relative; 1000:1 is as lopsided as it gets). */
  packageWeightMax: 1000,
  /** Conditions in one `and` / `or`, and how deep conditions nest (evaluation recurses). */
  conditionItemsMax: 64,
  conditionDepthMax: 16,
  /** A regex is compiled for every record a policy sees; long ones are a smell and slow to compile. */
  regexCharsMax: 1024,
  descriptionCharsMax: 1024,
  stringCharsMax: 4096,
  /** The model re-serialized as canonical JSON (the JSON export); it travels as one Raft entry. */
  documentBytesMax: 4 * 1024 * 1024,
  /**
   * Text accepted by the importer, checked before parsing. YAML must escape DEL and C1 controls as
   * `\xNN` (4 bytes where JSON writes 1-2), so a valid model's YAML export can be up to 4 times its
   * JSON; anything larger cannot be a valid model and is refused unread.
   */
  textBytesMax: 16 * 1024 * 1024,
  /** Containers nested in a document: parsers recurse, and a valid model needs fewer than 40. */
  nestingDepthMax: 64,
  /** Problems listed for one input; the rest are counted, so a garbage document yields a bounded answer. */
  problemsMax: 1000,
} as const;

assert(configLimits.textBytesMax >= 4 * configLimits.documentBytesMax, "every valid model's YAML export must be importable");
// Deepest valid document: root, policies, policy, rules, rule, then each condition level adds an `and` and its array.
assert(5 + 2 * configLimits.conditionDepthMax <= configLimits.nestingDepthMax, "valid conditions must fit the nesting limit");
assert(configLimits.regexCharsMax <= configLimits.stringCharsMax && configLimits.descriptionCharsMax <= configLimits.stringCharsMax, "field limits within the string limit");

/** The replicated configuration's own bookkeeping (server/state/config-state.ts). */
export const configStateLimits = {
  /** Deployments kept for history and rollback; older ones are pruned. */
  deploymentsKept: 100,
  /** Renewal events waiting for the package runtime; it takes them every tick. */
  renewalEventsKept: 10_000,
  /** Packages one assign or renew op may name. */
  packagesPerOpMax: 256,
} as const;

/**
 * HA package leases and assignment (server/connector/packages). A holder renews every 150 ms and
 * its lease lasts 500 ms, so two renewals can be lost before it stops acting; the leader's view adds
 * a 100 ms margin. A dead holder's packages move within lease + margin + one plan (~700 ms) and run
 * again after the new holder's first renewal: inside the "within 1 s" of the failure window.
 */
export const packageTiming = {
  tickMs: 50,
  renewEveryMs: 150,
  leaseMs: 500,
  marginMs: 100,
  planEveryMs: 100,
  failureWindowMs: 500,
  /** Voluntary moves per plan: a rejoining node gets work back one package at a time. */
  rebalanceMovesMax: 1,
} as const;

assert(packageTiming.renewEveryMs * 3 <= packageTiming.leaseMs, "a lease outlives two lost renewals");
assert(packageTiming.tickMs <= packageTiming.renewEveryMs && packageTiming.tickMs <= packageTiming.planEveryMs, "the runtime ticks at least as often as it renews and plans");

/**
 * Inbound XML (server/connector/events/xml-reader.ts, event-xml.ts). Request bodies are untrusted:
 * the reader refuses DTDs outright (so no entity expansion: no billion laughs, no external
 * entities), and these bounds keep its time and memory linear in a body the HTTP layer already capped.
 */
export const xmlLimits = {
  /** UTF-8 bytes of one document: the HTTP body limit. */
  inputBytesMax: 16 * 1024 * 1024,
  /** Open elements at once; a valid event batch needs 5 (list, event, custom_attributes, custom_attribute, name). */
  depthMax: 32,
  elementsMax: 200_000,
  attributesPerElementMax: 64,
  /** Characters of one element or attribute name. */
  nameCharsMax: 256,
  /** UTF-8 bytes of decoded character data directly inside one element (and of one attribute value). */
  elementTextBytesMax: 1024 * 1024,
  /** `<event_data>` elements in one request. */
  eventsPerRequestMax: 10_000,
} as const;

assert(xmlLimits.inputBytesMax <= httpLimits.bodyBytesMax, "an XML limit above the body limit could never be reached");
assert(xmlLimits.elementTextBytesMax <= xmlLimits.inputBytesMax, "one element's text cannot exceed the document");
assert(xmlLimits.depthMax >= 5, "a batch with custom attributes nests 5 deep");
// A full batch with every event_data field (15 text fields + custom_attributes) must be readable.
assert(1 + xmlLimits.eventsPerRequestMax * (1 + 16) <= xmlLimits.elementsMax, "a full batch must fit the element limit");

/** The binary form of an event (server/connector/events/event-codec.ts) and what reads it. */
export const eventCodecLimits = {
  /** Fields one event may carry: a bound on a reader's loop, far above any real event. */
  fieldsMax: 100_000,
  /**
   * Custom attributes whose names the OMi XML writer (omi-xml-bytes.ts) checks for repeats itself;
   * an event with more goes the string path, so the check stays small. Ingest lets 256 through.
   */
  bytesPathAttributesMax: 64,
} as const;

/** The replicated event outbox (server/state/outbox.ts). */
export const outboxLimits = {
  /**
   * Undelivered events one package may hold while OMi is unreachable (the disk budget, in events):
   * past it, new events are refused (503, retry) rather than dropped; status alarms near it.
   */
  eventsPerPackageMax: 1_000_000,
  /**
   * Undelivered events moved out of compacted log entries into event rows per flush, so one
   * transaction stays small however large the backlog; the entries stay until their events are
   * moved. Measured in the events benchmark (a Ready-duration probe): 20,000 per flush took 34-81 ms
   * to build and about 100 ms to commit, in one Ready; at 2,000 the build stays under 10 ms.
   */
  materializeEventsPerFlushMax: 2_000,
  /**
   * Log entries kept past the compaction point because they hold undelivered events, at most this
   * much data: below it an event reaches the disk once (in its entry), and a backlog that forwarding
   * works off soon is never rewritten (measured: batched 52-53k events/s with the rewrite, 58k
   * without); past it the oldest events move into rows and their entries go. Read back at boot.
   */
  retainedLogBytesMax: 256 * 1024 * 1024,
  /**
   * The disk budget of a package's backlog (stored event bytes) when its HA package policy sets no
   * `outboxBytesMax`; the backlog is also held in memory, hence the ceiling on what a package may set.
   */
  bytesPerPackageDefault: 256 * 1024 * 1024,
  bytesPerPackageMin: 1024 * 1024,
  bytesPerPackageMax: 4 * 1024 * 1024 * 1024,
  /** Idempotency keys and source_event_ids remembered (the dedup window), oldest forgotten first. */
  dedupKeysMax: 200_000,
  /** Results kept for proposers to read back (their request is answered within seconds). */
  resultsKept: 10_000,
  /** Status raises an alarm once a package's backlog passes this share of its budget. */
  alarmFraction: 0.8,
} as const;

/**
 * Group commit of listener requests into outbox entries (server/connector/events/accept-queue.ts).
 * An entry stays well under one Raft append (raftLimits.appendBytesMax), so a batch never travels alone.
 */
export const acceptBatching = {
  eventsPerEntryMax: 5_000,
  bytesPerEntryMax: 512 * 1024,
  /**
   * Events this node has proposed and not yet seen applied: it starts an entry only within this
   * bound, or when it has none in flight (then one entry goes, up to the entry limits above); more
   * wait here, merging into the next entries. The Raft log is one queue: without this bound a burst
   * of requests fills its uncommitted tail, and a cursor move or lease renewal (small, proposed
   * directly) commits only behind all of it.
   * Events bench, burst of 100-event batches from 256 clients, alternating runs: forwarded during the
   * burst 18.9k/s against 9.5k/s unbounded (2,500: 14.3-16.1k/s), accepted 128k against 150k/s;
   * 16 clients (the bound not reached) 113k against 111k.
   */
  inFlightEventsMax: 1_000,
  /** Bytes of requests waiting for room, per node; past it a request is refused with 503 (retry). */
  waitingBytesMax: 64 * 1024 * 1024,
  /**
   * How long a request may wait for room before it is refused with 503 (never proposed, so a retry
   * is safe). Half the group's deadline: waiting and then the proposal stay within 1.5 deadlines.
   */
  waitingMsMax: groupLimits.requestDeadlineMs / 2,
} as const;
assert(acceptBatching.bytesPerEntryMax <= raftLimits.appendBytesMax / 2, "an accept batch leaves room in an append for its neighbours");
assert(acceptBatching.waitingBytesMax <= raftLimits.uncommittedBytesMax, "requests waiting on a node hold no more than the leader would take uncommitted");

/** Forwarding a package's outbox to OMi (server/connector/forwarding). */
export const forwardingLimits = {
  /**
   * Events per POST to OMi's event_list (at most; a batch holds what is waiting). A failover re-sends
   * at most one batch, so this bounds duplicates; it also bounds forwarding throughput, because the
   * next batch goes only once the cursor move of the last one is committed: at 500, a group taking
   * 40k events/s in batches forwarded 10k/s (a cursor move waits behind the ingest load); at 2,000,
   * 26k/s (events bench load, same run; before acceptBatching.inFlightEventsMax shortened that wait).
   */
  batchEventsMax: 2_000,
  /**
   * Stored event bytes per batch (about: the first event always goes, however large). Events run
   * to about 1 MB each, so a count alone lets one POST or WebSocket message reach gigabytes of XML
   * or JSON, held in memory while it is sent. At 4 MiB, batches of ordinary events (a few hundred
   * bytes stored: about 370 with a 128-byte description) are still bounded by batchEventsMax, and
   * a consumer's batches in flight (forwardTargetLimits) hold about 16 MiB of events at most.
   */
  batchBytesMax: 4 * 1024 * 1024,
  idlePollMs: 20,
  requestTimeoutMs: 10_000,
  /** Exponential backoff with full jitter while OMi is down or refusing. */
  backoff: { baseMs: 100, maxMs: 5_000 },
} as const;

/**
 * Dead letters (server/state/outbox.ts; the forwarder's bisect, server/connector/forwarding/refusal.ts):
 * events a target refused on their own, moved out of the outbox so they do not block the package.
 */
export const deadLetterLimits = {
  /** Kept per package; past it the oldest is dropped and counted (deadLettersDropped), never silently. */
  perPackageMax: 10_000,
  /**
   * Stored event bytes kept per package, the same way (the newest always stays). Dead letters live
   * in memory and in snapshots like the backlog, and events run to about 1 MB: a count alone would
   * let 10,000 of them reach gigabytes.
   */
  bytesPerPackageMax: 64 * 1024 * 1024,
  /** Characters of the refusal kept with each (the target's status and an excerpt of its answer). */
  reasonCharsMax: 1_024,
  /** Dead letters in one page of `GET /api/v1/outbox/<package>/dead-letters`: default and most. */
  pageDefault: 100,
  pageMax: 1_000,
  /** Seqs named in one requeue request (`{all: true}` takes every one, at most perPackageMax). */
  requeueSeqsMax: 10_000,
} as const;

assert(deadLetterLimits.pageDefault <= deadLetterLimits.pageMax, "the default page fits the largest");
assert(deadLetterLimits.requeueSeqsMax >= deadLetterLimits.perPackageMax, "one request can requeue every dead letter of a package");
assert(deadLetterLimits.perPackageMax <= outboxLimits.eventsPerPackageMax, "requeued dead letters fit an empty outbox");
assert(deadLetterLimits.bytesPerPackageMax <= outboxLimits.bytesPerPackageDefault, "a package's dead letters hold less than its default backlog");

/**
 * Per-package forwarding targets (server/connector/forwarding: webhook-sender.ts, websocket-target.ts,
 * consumer-registry.ts) and their part of the configuration model (`packages[].forward`).
 */
export const forwardTargetLimits = {
  /** Extra headers on a webhook target; each name and value bounded (they go on every POST). */
  webhookHeadersMax: 32,
  headerNameCharsMax: 64,
  headerValueCharsMax: 1024,
  /** Name of the environment variable that holds a webhook's Authorization value. */
  envNameCharsMax: 128,
  /**
   * Batches sent to a WebSocket consumer and not yet acknowledged. A few keep the consumer busy
   * while the cursor of the previous one commits; each is at most forwardingLimits.batchEventsMax.
   */
  consumerBatchesInFlightMax: 4,
  /** A batch not acknowledged within this is failed (retry outcome) and sent again later. */
  consumerAckTimeoutMs: 10_000,
  /** A connection that has not subscribed within this is closed. */
  consumerSubscribeTimeoutMs: 10_000,
  /** Characters of one consumer → server message (subscribe and ack are tiny). */
  consumerMessageCharsMax: 1024,
  /** Open consumer WebSockets on one node, subscribed or not; more are closed at once. */
  consumerConnectionsMax: 256,
} as const;

assert(forwardTargetLimits.consumerBatchesInFlightMax >= 1, "a consumer needs at least one batch in flight");
assert(forwardTargetLimits.consumerAckTimeoutMs >= forwardingLimits.idlePollMs * 10, "an ack timeout must leave the consumer time to answer");
assert(forwardTargetLimits.headerNameCharsMax + forwardTargetLimits.headerValueCharsMax <= configLimits.stringCharsMax, "header fields within the model's string limit");

/** Basic auth (RFC 7617, server/http/middleware/auth.ts). Every user is compared on every basic request, so their count is bounded. */
export const basicAuthLimits = {
  usersMax: 64,
  userCharsMax: 64,
  passwordBytesMax: 1024,
} as const;
