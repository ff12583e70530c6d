/**
 * Group commit of listener requests (server/connector/events/accept-queue.ts) on real Raft drivers
 * with real libSQL files: requests of one turn share one log entry, each answered with its own ids.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { Network, type TestNode } from "../../node/support/driver-network.ts";
import { AcceptQueue, type AcceptOutcome } from "../../../server/connector/events/accept-queue.ts";
import { encodeOprEvent } from "../../../server/connector/events/event-codec.ts";
import { emptyOprEvent } from "../../../server/connector/events/event-record.ts";
import { encodeCommand } from "../../../server/state/command-codec.ts";
import { NotLeaderError, ProposalDroppedError } from "../../../server/node/driver-errors.ts";
import { cleanupAll } from "../../support/node-process.ts";
import { acceptBatching } from "../../../server/constants.ts";

afterAll(cleanupAll);
let net: Network | null = null;
afterEach(async () => {
  await net?.stop();
  net = null;
});

const idsOf = (outcome: AcceptOutcome | undefined): readonly string[] => (outcome?.ok ? outcome.ids : []);
const event = (title: string) => encodeOprEvent({ ...emptyOprEvent(), title });
const segment = (titles: string[], requestKey: string | null = null) => ({ requestKey, eventKeys: titles.map(() => null), events: titles.map(event) });

async function deployed(): Promise<{ leader: TestNode; follower: TestNode }> {
  net = new Network();
  await net.start(["a", "b", "c"], { withGroups: true });
  const leader = await net.untilLeader();
  const model = {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: ["a", "b", "c"].map((id) => ({ id, fqdn: `${id}:1` })) },
    policies: [
      { name: "l", type: "event-listener", path: "x", inputFormat: "json" },
      { name: "l2", type: "event-listener", path: "y", inputFormat: "json" },
    ],
    packages: [
      { name: "pkg", policies: ["l"] },
      { name: "pkg2", policies: ["l2"] },
    ],
    aspects: [{ name: "asp", ciType: "Running Software", packages: ["pkg", "pkg2"] }],
    templates: [{ name: "t", ciType: "Operations Connector System", aspects: ["asp"] }],
  };
  for (const id of ["a", "b", "c"]) await leader.group!.propose(encodeCommand({ kind: "member-set", nodeId: id, address: `${id}:1` }));
  expect((await leader.group!.propose(encodeCommand({ kind: "config", op: { op: "put-model", document: model } }))).result.ok).toBe(true);
  expect((await leader.group!.propose(encodeCommand({ kind: "config", op: { op: "deploy", template: "t", atMs: 1 } }))).result.ok).toBe(true);
  return { leader, follower: [...net.nodes.values()].find((n) => n !== leader)! };
}

test("requests of one turn on a follower share one entry; each gets its own ids, in order, and every node holds the events", async () => {
  const { leader, follower } = await deployed();
  const queue = new AcceptQueue({ group: () => follower.group, state: follower.state, nowMs: () => 1_000 });
  const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => queue.submit("pkg", segment([`r${i}-a`, `r${i}-b`]))));
  expect(queue.stats()).toEqual({ requests: 40, entries: 1, inFlightEvents: 0, waitingRequests: 0, waitingBytes: 0 });
  const index = Number(idsOf(outcomes[0])[0]!.split(".")[0]);
  expect(outcomes).toEqual(Array.from({ length: 40 }, (_, i) => ({ ok: true, ids: [`${index}.${2 * i}`, `${index}.${2 * i + 1}`], duplicates: 0 })));
  await leader.group!.waitApplied(index);
  expect(leader.state.outbox.pending("pkg", 0, 1_000).map((e) => e.event.title)).toEqual(Array.from({ length: 40 }, (_, i) => [`r${i}-a`, `r${i}-b`]).flat());
}, 20_000);

test("requests in later turns go in later entries; an Idempotency-Key re-sent gets the first ids as duplicates", async () => {
  const { leader } = await deployed();
  const queue = new AcceptQueue({ group: () => leader.group, state: leader.state, nowMs: () => 1_000 });
  const first = await queue.submit("pkg", segment(["a"], "key-1"));
  const again = await queue.submit("pkg", segment(["a"], "key-1"));
  expect(queue.stats()).toEqual({ requests: 2, entries: 2, inFlightEvents: 0, waitingRequests: 0, waitingBytes: 0 });
  expect(again).toEqual({ ok: true, ids: idsOf(first), duplicates: 1 });
}, 20_000);

test("a package not deployed refuses every request of the entry; no group is 'no leader'", async () => {
  const { leader } = await deployed();
  const queue = new AcceptQueue({ group: () => leader.group, state: leader.state, nowMs: () => 1_000 });
  const outcomes = await Promise.all([queue.submit("nope", segment(["a"])), queue.submit("nope", segment(["b"]))]);
  expect(outcomes.map((o) => !o.ok && "notDeployed" in o)).toEqual([true, true]);
  const stopped = new AcceptQueue({ group: () => null, state: leader.state, nowMs: () => 1_000 });
  await expect(stopped.submit("pkg", segment(["a"]))).rejects.toBeInstanceOf(NotLeaderError);
}, 20_000);

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("past the in-flight bound, requests of later turns wait and then share one entry; past the waiting bound one is refused (503, retry) and nothing else changes", async () => {
  const { leader } = await deployed();
  const queue = new AcceptQueue({ group: () => leader.group, state: leader.state, nowMs: () => 1_000, limits: { ...acceptBatching, inFlightEventsMax: 4, waitingBytesMax: 200 } });
  // The leader cut off: its entry cannot commit, so what comes next must wait for room.
  net!.isolate(leader.id);
  const first = queue.submit("pkg", segment(["a1", "a2", "a3", "a4", "a5", "a6"])); // over the bound, but alone: it goes
  await nextTurn();
  expect(queue.stats()).toMatchObject({ entries: 1, inFlightEvents: 6, waitingRequests: 0 });
  const second = queue.submit("pkg", segment(["b"]));
  await nextTurn();
  const third = queue.submit("pkg", segment(["c"]));
  await nextTurn();
  const waiting = queue.stats();
  expect(waiting).toMatchObject({ entries: 1, inFlightEvents: 6, waitingRequests: 2 });
  expect(waiting.waitingBytes).toBeGreaterThan(0);
  // A request that would take the waiting bytes past the bound is refused at once.
  const refused = queue.submit("pkg", segment(["x".repeat(400)]));
  await expect(refused).rejects.toBeInstanceOf(ProposalDroppedError);
  expect(queue.stats()).toEqual({ ...waiting });
  net!.heal();
  const [a, b, c] = await Promise.allSettled([first, second, third]);
  // The cut-off entry may have been lost to a new leader; the two that waited went together after it.
  expect(a!.status === "rejected" || idsOf(a!.value).length === 6).toBe(true);
  expect(queue.stats()).toMatchObject({ entries: 2, inFlightEvents: 0, waitingRequests: 0, waitingBytes: 0 });
  if (b!.status === "fulfilled" && c!.status === "fulfilled") {
    const [bId, cId] = [idsOf(b.value)[0]!, idsOf(c.value)[0]!];
    expect([bId.split(".")[0], cId.split(".")[1]]).toEqual([cId.split(".")[0], "1"]);
  } else {
    expect([b!.status, c!.status]).toEqual(["rejected", "rejected"]);
  }
}, 30_000);

test("a request that waited past waitingMsMax for room is refused (503, never proposed); stop() refuses what waits and what comes", async () => {
  const { leader } = await deployed();
  let nowMs = 1_000;
  const queue = new AcceptQueue({ group: () => leader.group, state: leader.state, nowMs: () => nowMs, limits: { ...acceptBatching, eventsPerEntryMax: 1, inFlightEventsMax: 1, waitingMsMax: 5_000 } });
  net!.isolate(leader.id);
  const first = queue.submit("pkg", segment(["a"]));
  await nextTurn();
  const late = queue.submit("pkg", segment(["late"]));
  await nextTurn();
  expect(queue.stats()).toMatchObject({ entries: 1, inFlightEvents: 1, waitingRequests: 1 });
  nowMs += 5_000;
  net!.heal();
  await Promise.allSettled([first]);
  await expect(late).rejects.toThrow("never proposed");
  expect(queue.stats()).toMatchObject({ entries: 1, inFlightEvents: 0, waitingRequests: 0, waitingBytes: 0 });

  net!.isolate(leader.id);
  // One turn, one line: one event per entry, so "b" goes and "c" stays behind it on the same line.
  const second = queue.submit("pkg", segment(["b"]));
  const waiting = queue.submit("pkg", segment(["c"]));
  await nextTurn();
  expect(queue.stats()).toMatchObject({ entries: 2, inFlightEvents: 1, waitingRequests: 1 });
  queue.stop();
  await expect(waiting).rejects.toBeInstanceOf(NotLeaderError);
  await expect(queue.submit("pkg", segment(["d"]))).rejects.toBeInstanceOf(NotLeaderError);
  expect(queue.stats()).toMatchObject({ waitingRequests: 0, waitingBytes: 0 });
  net!.heal();
  await Promise.allSettled([second]);
  expect(queue.stats()).toMatchObject({ entries: 2, inFlightEvents: 0 });
}, 30_000);

test("packages take strict turns: one with no room holds the front, so a busy package cannot pass it while the bound stays full", async () => {
  const { leader } = await deployed();
  const queue = new AcceptQueue({ group: () => leader.group, state: leader.state, nowMs: () => 1_000, limits: { ...acceptBatching, inFlightEventsMax: 3 } });
  net!.isolate(leader.id);
  const first = queue.submit("pkg2", segment(["a"]));
  await nextTurn();
  // pkg's 3 events do not fit beside the 1 in flight; pkg2's next one would, but pkg is ahead of it.
  const big = queue.submit("pkg", segment(["b1", "b2", "b3"]));
  await nextTurn();
  const small = queue.submit("pkg2", segment(["c"]));
  await nextTurn();
  expect(queue.stats()).toMatchObject({ entries: 1, inFlightEvents: 1, waitingRequests: 2 });
  net!.heal();
  const [, bigOutcome, smallOutcome] = await Promise.all([first, big, small]);
  // pkg went first once room freed, then pkg2: entry indexes in that order.
  const entryOf = (outcome: AcceptOutcome) => Number(idsOf(outcome)[0]!.split(".")[0]);
  expect(entryOf(bigOutcome)).toBeLessThan(entryOf(smallOutcome));
  expect(queue.stats()).toMatchObject({ entries: 3, inFlightEvents: 0, waitingRequests: 0 });
}, 30_000);
