/** The driver on a real libSQL file, single voter: no network needed to show the Ready loop works. */
import { afterAll, describe, expect, test } from "bun:test";
import { RaftDriver, type RaftTiming } from "../../server/node/raft-driver.ts";
import { NotLeaderError } from "../../server/node/driver-errors.ts";
import { LibsqlLogStore } from "../../server/storage/libsql-log-store.ts";
import { openDatabase, type OpenDatabase } from "../../server/storage/database.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { encodeCommand } from "../../server/state/command-codec.ts";
import { Logger } from "../../server/log/logger.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";

afterAll(cleanupAll);

const timing: RaftTiming = { tickMs: 5, electionTicks: 4, heartbeatTicks: 1, snapshotEveryEntries: 50, snapshotEveryBytes: 2 ** 40 };
const log = new Logger({ node: "d1", level: "error", pretty: false, sink: { write: () => {} } });
const text = new TextEncoder();

async function startDriver(dir: string, options: { bootstrap: boolean; state?: ReplicatedState }) {
  const open: OpenDatabase = await openDatabase(dir);
  const state = options.state ?? new ReplicatedState();
  const fatal: Error[] = [];
  const driver = new RaftDriver({
    nodeId: "d1",
    store: new LibsqlLogStore(open),
    state,
    transport: { send: () => {} },
    log,
    timing,
    seed: 7,
    onFatal: (e) => fatal.push(e),
  });
  const how = await driver.start(open.client, options.bootstrap ? ["d1"] : null);
  return { driver, state, open, how, fatal };
}

async function untilLeader(driver: RaftDriver): Promise<void> {
  for (let i = 0; i < 400 && driver.status().role !== "leader"; i++) await Bun.sleep(5);
  expect(driver.status().role).toBe("leader");
}

describe("RaftDriver (single voter, real libSQL)", () => {
  test("bootstraps, elects itself, applies proposals durably, and restarts with the same state", async () => {
    const dir = tempDir();
    const first = await startDriver(dir, { bootstrap: true });
    expect(first.how).toBe("bootstrapped");
    await untilLeader(first.driver);
    const results = await Promise.all(
      Array.from({ length: 120 }, (_, i) => first.driver.propose(encodeCommand({ kind: "kv-put", key: `k${i % 10}`, value: text.encode(`v${i}`) }))),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(new TextDecoder().decode(first.state.kv.get("k9")?.value)).toBe("v119");
    const appliedBefore = first.state.applied;
    await first.driver.stop();
    first.open.close();

    const again = await startDriver(dir, { bootstrap: true });
    expect(again.how).toBe("restarted");
    expect(again.state.applied).toBe(appliedBefore);
    expect(new TextDecoder().decode(again.state.kv.get("k9")?.value)).toBe("v119");
    await untilLeader(again.driver);
    const index = await again.driver.readIndex();
    expect(index).toBeGreaterThanOrEqual(appliedBefore);
    expect(again.fatal).toEqual([]);
    await again.driver.stop();
    again.open.close();
  }, 20_000);

  test("deleting compacted entries keeps pace with sustained writes: a slice per Ready, not per snapshot", async () => {
    // 20 rows per flush against a snapshot every 50 entries: flushing only at snapshots (and once a
    // second) would leave 30 dead rows behind per snapshot.
    const upkeep = { deleteRowsMax: 20, scanStepsMax: 1000, cleanValuesMax: 100, garbageSlackBytes: 0, tombstonesMax: 100, tombstonesSlack: 100 };
    const node = await startDriver(tempDir(), { bootstrap: true, state: new ReplicatedState(upkeep) });
    await untilLeader(node.driver);
    for (let wave = 0; wave < 100; wave++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => node.driver.propose(encodeCommand({ kind: "kv-put", key: `hot${i % 5}`, value: text.encode(`v${wave}`) }))));
    }
    for (let i = 0; i < 20; i++) await node.driver.propose(encodeCommand({ kind: "kv-put", key: "last", value: text.encode(`${i}`) }));
    const stored = Number((await node.open.client.execute("SELECT count(*) AS n FROM raft_entries")).rows[0]!["n"]);
    expect(node.state.applied).toBeGreaterThan(2000);
    // At most one snapshot interval of entries, a few Readies of backlog, and the live holders.
    expect(stored).toBeLessThan(150);
    await node.driver.stop();
    node.open.close();
  }, 20_000);

  test("a node with an empty log and no bootstrap waits to join and refuses proposals", async () => {
    const joiner = await startDriver(tempDir(), { bootstrap: false });
    expect(joiner.how).toBe("joining");
    await Bun.sleep(50);
    expect(joiner.driver.status().role).toBe("follower");
    await expect(joiner.driver.propose(encodeCommand({ kind: "kv-delete", key: "x" }))).rejects.toBeInstanceOf(NotLeaderError);
    await joiner.driver.stop();
    joiner.open.close();
  });
});
