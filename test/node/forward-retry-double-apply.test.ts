/**
 * Review finding (fixed): the transport used to settle an already-sent request with "unknown-peer"
 * when setPeers() dropped its link, and Group retried anything but timeout as "never sent", so the
 * leader appended the proposal twice. Now only failures before sending are retried, and a dropped
 * link after sending is "disconnected" (test/transport: "a request already sent ...").
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { Network } from "./support/driver-network.ts";
import { encodeCommand } from "../../server/state/command-codec.ts";
import { cleanupAll } from "../support/node-process.ts";

afterAll(cleanupAll);
let net: Network | null = null;
afterEach(async () => {
  await net?.stop();
  net = null;
});

test("a forwarded proposal whose reply is lost after delivery is never appended twice", async () => {
  net = new Network();
  await net.start(["a", "b", "c"], { withGroups: true });
  const leader = await net.untilLeader();
  const follower = [...net.nodes.values()].find((n) => n !== leader)!;
  const command = encodeCommand({ kind: "kv-put", key: "once", value: new TextEncoder().encode("v") });

  // The leader received and applied the forward; then the follower's plan dropped the leader's link
  // (setPeers → failPending(peer, "disconnected")) before the answer arrived.
  follower.rewriteNextReply = () => ({ ok: false, reason: "disconnected" });
  const outcome = await follower.group!.propose(command).then(
    () => "acknowledged",
    (e: Error) => e.name,
  );

  const rows = await leader.open.client.execute({ sql: "SELECT count(*) AS n FROM raft_entries WHERE data = ?", args: [command] });
  const appended = Number(rows.rows[0]!["n"]);
  // Either the client is told "outcome unknown" (no retry) and the command is in the log once, or it
  // is acknowledged and in the log once. Never twice.
  expect({ outcome, appended }).toEqual({ outcome: "ProposalOutcomeUnknownError", appended: 1 });
}, 20_000);
