/**
 * Finding: maybeCompact() runs after advance() with the driver's applied index, but a leader's
 * snapshot that arrived while a write was in flight (step() between ready() and advance() is allowed
 * by the RawNode contract, and durable writes await an fsync off the thread) has already moved the
 * core's log past that index. node.compact(applied) then trips "snapshot older than the compaction
 * point"; run() catches the AssertionError as if it were a failed durable write and the node stops
 * for good (onFatal). Two windows: the Ready's own write, and compaction's flush before compacting.
 */
import { afterAll, expect, test } from "bun:test";
import { RaftDriver } from "../../server/node/raft-driver.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { ByteWriter } from "../../server/state/binary.ts";
import type { Entry, Message } from "../../server/raft/types.ts";
import type { SqlStatement } from "../../server/storage/sql-writer.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";
import { HookedStore, quietLog } from "./support/driver-network.ts";

afterAll(cleanupAll);

const entriesCount = 5;
const snapshotIndex = entriesCount + 10;

/** A follower compacting every 5 entries gets entries 1..5; the leader's snapshot at 15 is stepped in during the commit `injectAt` picks. */
async function snapshotDuring(injectAt: (statements: SqlStatement[], durable: boolean) => boolean): Promise<void> {
  const open = await openDatabase(tempDir("opsconn-review-"));
  const store = new HookedStore(open);
  const state = new ReplicatedState();
  const fatal: Error[] = [];
  const driver = new RaftDriver({
    nodeId: "f",
    store,
    state,
    transport: { send: () => {} },
    log: quietLog("f"),
    timing: { tickMs: 1000, electionTicks: 10, heartbeatTicks: 1, snapshotEveryEntries: entriesCount, snapshotEveryBytes: 2 ** 40 },
    seed: 1,
    onFatal: (e) => fatal.push(e),
  });
  expect(await driver.start(open.client, null)).toBe("joining");
  const snap: Message = {
    type: "snap",
    from: "l",
    to: "f",
    term: 1,
    snapshot: {
      meta: { index: snapshotIndex, term: 1, confState: { voters: ["l", "f"], learners: [] } },
      data: new ByteWriter(32).u8(1).f64(snapshotIndex).u32(0).u32(0).finish(),
    },
  };
  let injected = false;
  store.beforeCommit = (statements, durable) => {
    if (!injected && injectAt(statements, durable)) {
      injected = true;
      driver.step([snap]);
    }
  };
  const entries: Entry[] = Array.from({ length: entriesCount }, (_, i) => ({ term: 1, index: i + 1, type: "normal", data: new Uint8Array(0) }));
  driver.step([{ type: "app", from: "l", to: "f", term: 1, index: 0, logTerm: 0, entries, commit: entriesCount }]);
  for (let i = 0; i < 100 && state.applied < snapshotIndex && fatal.length === 0; i++) await Bun.sleep(5);

  expect(injected).toBe(true);
  expect({ fatal: fatal.map((e) => e.message), applied: state.applied }).toEqual({ fatal: [], applied: snapshotIndex });
  await driver.stop();
  open.close();
}

test("a snapshot stepped in while an apply Ready is being persisted does not kill the node", async () => {
  await snapshotDuring((statements) => statements.length > 0);
});

test("a snapshot stepped in while compaction's own flush is being synced does not kill the node either", async () => {
  await snapshotDuring(
    (statements, durable) => durable && statements.some((s) => s.sql.includes("raft_applied")) && !statements.some((s) => s.sql.startsWith("INSERT INTO raft_entries")),
  );
});
