/**
 * Finding: handleReady() sends every "app"/"heartbeat" message before the Ready's transaction, on
 * the grounds that only a leader sends them and a leader's term is already durable. That holds when
 * votes from peers are needed, but a single voter (with learners, e.g. while a second node joins)
 * campaigns and wins inside one Ready: hardState {term T+1, votedFor self}, the new term's no-op (and
 * any proposals that joined the Ready) and the appends carrying them leave together, and the appends
 * go out before term T+1 is on disk. Crash before the fsync, restart at term T, win T+1 again with
 * different proposals: the learner now holds a different entry under the same (index, term), so Log
 * Matching is broken and it later applies the wrong command.
 */
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { RaftDriver } from "../../server/node/raft-driver.ts";
import { LibsqlLogStore } from "../../server/storage/libsql-log-store.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import type { Message } from "../../server/raft/types.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";
import { fastTiming, quietLog } from "./support/driver-network.ts";

afterAll(cleanupAll);

async function startDriver(dir: string, send: (messages: readonly Message[]) => void) {
  const open = await openDatabase(dir);
  const driver = new RaftDriver({
    nodeId: "a",
    store: new LibsqlLogStore(open),
    state: new ReplicatedState(),
    transport: { send },
    log: quietLog("a"),
    timing: fastTiming,
    seed: 3,
    onFatal: () => {},
  });
  await driver.start(open.client, ["a"]);
  return { driver, open };
}

async function untilLeader(driver: RaftDriver): Promise<void> {
  const ready = () => driver.status().role === "leader" && driver.status().applied >= driver.status().lastIndex;
  for (let i = 0; i < 400 && !ready(); i++) await Bun.sleep(5);
  expect(driver.status().role).toBe("leader");
}

test("a single voter never sends appends of a term that is not yet durable", async () => {
  const dir = tempDir("opsconn-review-");
  const first = await startDriver(dir, () => {});
  await untilLeader(first.driver);
  const added = await first.driver.proposeConfChange({ type: "add-learner", nodeId: "z" });
  expect(added.ok).toBe(true);
  await first.driver.stop();
  first.open.close();

  // Restart: the node campaigns for a new term and wins it alone, in one Ready.
  const reader = new Database(join(dir, "opsconn.db"), { readonly: true });
  const durableTerm = () => (reader.query("SELECT term FROM raft_hard_state").get() as { term: number } | null)?.term ?? 0;
  const sent: Array<{ type: string; term: number; durableTerm: number }> = [];
  const again = await startDriver(dir, (messages) => {
    for (const m of messages) if (m.to === "z") sent.push({ type: m.type, term: m.term, durableTerm: durableTerm() });
  });
  await untilLeader(again.driver);
  await Bun.sleep(20);
  await again.driver.stop();
  again.open.close();
  reader.close();

  expect(sent.length).toBeGreaterThan(0);
  expect(sent.filter((m) => m.term > m.durableTerm)).toEqual([]);
}, 20_000);
