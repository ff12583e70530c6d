/**
 * Review finding (fixed): Group.untilCaughtUp() used to count a learner as caught up when
 * `commit - match <= 100`, so in a fresh group a learner that never answered was promoted at once;
 * added to a one-node group, it made the quorum 2 of 2 and the group could never commit again.
 * Now a learner must hold the commit index sampled when it joined and be heard from, and one never
 * heard from is reported within groupLimits.learnerContactMs.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { Network, settledWithin } from "./support/driver-network.ts";
import { encodeCommand } from "../../server/state/command-codec.ts";
import { cleanupAll } from "../support/node-process.ts";

afterAll(cleanupAll);
let net: Network | null = null;
afterEach(async () => {
  await net?.stop();
  net = null;
});

test("a learner that never answered is not promoted to voter", async () => {
  net = new Network();
  await net.start(["a"], { withGroups: true });
  const leader = await net.untilLeader();
  // "z" does not exist: nothing will ever answer for it.
  const added = await settledWithin(leader.group!.addNode("z", "127.0.0.1:9"), 5000);
  const conf = leader.driver.status().confState;
  const progress = leader.driver.status().progress.get("z");
  // z never answered (match 0): addNode fails with a clear error and z stays a learner.
  expect({ added, voters: conf.voters, zMatch: progress?.match ?? null }).toEqual({ added: "rejected", voters: ["a"], zMatch: 0 });
}, 20_000);

test("after adding an unreachable node to a one-node group, the group still commits", async () => {
  net = new Network();
  await net.start(["a"], { withGroups: true });
  const leader = await net.untilLeader();
  await settledWithin(leader.group!.addNode("z", "127.0.0.1:9"), 2000);
  const write = leader.group!.propose(encodeCommand({ kind: "kv-put", key: "k", value: new Uint8Array([1]) }));
  write.catch(() => {});
  expect(await settledWithin(write, 2000)).toBe("resolved");
}, 20_000);
