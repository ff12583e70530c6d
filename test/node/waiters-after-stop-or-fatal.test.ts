/**
 * Findings (low severity, resource bounds): (1) after a fatal durable-write failure run() marks the
 * driver stopped but never rejects the parked proposals/reads/applied waiters, so every waiting
 * client hangs until the group deadline; (2) readIndex() and waitApplied() do not check `stopped`, so a
 * read started after stop() parks a waiter nothing will ever settle.
 */
import { afterAll, expect, test } from "bun:test";
import { RaftDriver } from "../../server/node/raft-driver.ts";
import { openDatabase } from "../../server/storage/database.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { encodeCommand } from "../../server/state/command-codec.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";
import { HookedStore, fastTiming, quietLog, settledWithin } from "./support/driver-network.ts";

afterAll(cleanupAll);

async function singleVoter() {
  const open = await openDatabase(tempDir("opsconn-review-"));
  const store = new HookedStore(open);
  const fatal: Error[] = [];
  const driver = new RaftDriver({ nodeId: "a", store, state: new ReplicatedState(), transport: { send: () => {} }, log: quietLog("a"), timing: fastTiming, seed: 5, onFatal: (e) => fatal.push(e) });
  await driver.start(open.client, ["a"]);
  const ready = () => driver.status().role === "leader" && driver.status().applied >= driver.status().lastIndex;
  for (let i = 0; i < 400 && !ready(); i++) await Bun.sleep(5);
  expect(ready()).toBe(true);
  return { driver, store, open, fatal };
}

test("a proposal parked when the durable write fails is rejected, not left hanging", async () => {
  const { driver, store, open, fatal } = await singleVoter();
  store.beforeCommit = () => {
    throw new Error("disk full");
  };
  const proposal = driver.propose(encodeCommand({ kind: "kv-put", key: "k", value: new Uint8Array([1]) }));
  proposal.catch(() => {});
  const outcome = await settledWithin(proposal, 300);
  expect(fatal.length).toBe(1);
  expect(outcome).toBe("rejected");
  store.beforeCommit = null;
  await driver.stop();
  open.close();
});

test("a read started after stop() is rejected, not parked forever", async () => {
  const { driver, open } = await singleVoter();
  await driver.stop();
  let read: Promise<number>;
  try {
    read = driver.readIndex();
  } catch (error) {
    read = Promise.reject(error as Error);
  }
  read.catch(() => {});
  expect(await settledWithin(read, 300)).toBe("rejected");
  open.close();
});
