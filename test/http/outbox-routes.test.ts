/** The dead-letter API in-process (server/http/routes/outbox.ts): listing, requeue, roles and every 4xx. */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../server/http/app.ts";
import { Logger } from "../../server/log/logger.ts";
import { ReplicatedState } from "../../server/state/replicated-state.ts";
import { encodeCommand, type Command } from "../../server/state/command-codec.ts";
import { encodeOprEvent } from "../../server/connector/events/event-codec.ts";
import { emptyOprEvent } from "../../server/connector/events/event-record.ts";
import { deadLetterLimits } from "../../server/constants.ts";
import type { Entry } from "../../server/raft/types.ts";
import { onePackageDeployed } from "../support/one-package.ts";

const log = new Logger({ node: "t", level: "error", pretty: false, sink: { write: () => {} } });
const tokens = [
  { token: "admin-token-0123456789", role: "admin" as const },
  { token: "ingest-token-0123456789", role: "ingest" as const },
  { token: "read-token-0123456789ab", role: "read" as const },
];
const as = (role: "admin" | "ingest" | "read") => ({ authorization: `Bearer ${tokens.find((t) => t.role === role)!.token}` });

/** A one-node state with package pkg deployed and held at epoch 1: 5 events, seqs 2 and 4 dead letters. */
function setup() {
  const state = new ReplicatedState();
  let index = 0;
  const apply = (data: Uint8Array) => {
    const entry: Entry = { index: ++index, term: 1, type: "normal", data };
    return { index, result: state.apply([entry]).results[0]! };
  };
  const commit = (command: Command) => apply(encodeCommand(command)).result;
  for (const command of onePackageDeployed()) commit(command);
  const events = ["a", "b", "c", "d", "e"].map((title) => encodeOprEvent({ ...emptyOprEvent(), title }));
  commit({ kind: "outbox", op: { op: "accept-batch", batch: { package: "pkg", atMs: 100, segments: [{ requestKey: null, eventKeys: events.map(() => null), events }] } } });
  commit({ kind: "outbox", op: { op: "forwarded", package: "pkg", epoch: 1, through: 1 } });
  commit({ kind: "outbox", op: { op: "dead-letter", package: "pkg", epoch: 1, seq: 2, atMs: 200, reason: { status: 400, message: "HTTP 400: bad b" } } });
  commit({ kind: "outbox", op: { op: "forwarded", package: "pkg", epoch: 1, through: 3 } });
  commit({ kind: "outbox", op: { op: "dead-letter", package: "pkg", epoch: 1, seq: 4, atMs: 400, reason: { status: 422, message: "HTTP 422: bad d" } } });
  const group = { propose: async (data: Uint8Array) => apply(data), waitApplied: async () => {}, readBarrier: async () => index };
  let running: typeof group | null = group;
  const app = createApp({ log, status: { status: () => ({ nodeId: "n1", version: "0", uptimeMs: 0, dataDir: "/d" }) }, group: () => running as never, state, peerHttp: { scheme: "http", ca: null }, tokens });
  return { app, state, stopGroup: () => (running = null) };
}

const requeue = (app: ReturnType<typeof setup>["app"], body: string, path = "/api/v1/outbox/pkg/dead-letters/requeue", role: "admin" | "ingest" | "read" = "admin") =>
  app.request(path, { method: "POST", headers: { ...as(role), "content-type": "application/json" }, body });
const messageOf = async (res: Response) => ((await res.json()) as { error: { status: number; message: string } }).error;

describe("GET /api/v1/outbox/<package>/dead-letters", () => {
  test("lists the dead letters in seq order with id, seq, event, reason and when they moved; pages with after and limit", async () => {
    const { app } = setup();
    const res = await app.request("/api/v1/outbox/pkg/dead-letters", { headers: as("read") });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { deadLetters: Array<{ id: string; seq: number; event: { title: string }; reason: unknown; at: unknown; acceptedAtMs: number }>; next: number | null; total: number; deadLettersDropped: number };
    expect(body.deadLetters.map((d) => ({ id: d.id, seq: d.seq, title: d.event.title, reason: d.reason, at: d.at, acceptedAtMs: d.acceptedAtMs }))).toEqual([
      { id: "5.1", seq: 2, title: "b", reason: { status: 400, message: "HTTP 400: bad b" }, at: { logIndex: 7, timeMs: 200 }, acceptedAtMs: 100 },
      { id: "5.3", seq: 4, title: "d", reason: { status: 422, message: "HTTP 422: bad d" }, at: { logIndex: 9, timeMs: 400 }, acceptedAtMs: 100 },
    ]);
    expect(body).toMatchObject({ next: null, total: 2, deadLettersDropped: 0 });
    const first = (await (await app.request("/api/v1/outbox/pkg/dead-letters?limit=1", { headers: as("read") })).json()) as typeof body;
    expect([first.deadLetters.map((d) => d.seq), first.next]).toEqual([[2], 2]);
    const second = (await (await app.request(`/api/v1/outbox/pkg/dead-letters?after=${first.next}&limit=1`, { headers: as("read") })).json()) as typeof body;
    expect([second.deadLetters.map((d) => d.seq), second.next]).toEqual([[4], 4]);
    const third = (await (await app.request("/api/v1/outbox/pkg/dead-letters?after=4&limit=1", { headers: as("read") })).json()) as typeof body;
    expect([third.deadLetters, third.next]).toEqual([[], null]);
  });

  test.each([
    ["/api/v1/outbox/pkg/dead-letters?after=abc", 400, "after: must be an integer from 0"],
    ["/api/v1/outbox/pkg/dead-letters?after=-1", 400, "after: must be an integer from 0"],
    ["/api/v1/outbox/pkg/dead-letters?limit=0", 400, `limit: must be an integer from 1 to ${deadLetterLimits.pageMax}`],
    [`/api/v1/outbox/pkg/dead-letters?limit=${deadLetterLimits.pageMax + 1}`, 400, `limit: must be an integer from 1 to ${deadLetterLimits.pageMax}`],
    ["/api/v1/outbox/-bad/dead-letters", 400, "package: must be 1-63 characters"],
    ["/api/v1/outbox/nope/dead-letters", 404, "package 'nope': not deployed, and it has no outbox"],
  ] as const)("GET %s: %d naming the problem", async (path, status, message) => {
    const res = await setup().app.request(path, { headers: as("read") });
    expect(res.status).toBe(status);
    expect((await messageOf(res)).message).toContain(message);
  });
});

describe("POST /api/v1/outbox/<package>/dead-letters/requeue", () => {
  test("named seqs go back into the outbox as new events with new seqs and ids, and the answer says so; all takes the rest", async () => {
    const { app, state } = setup();
    const res = await requeue(app, JSON.stringify({ seqs: [4] }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { requeued: Array<{ from: number; seq: number; id: string }>; note: string };
    expect(body.requeued).toEqual([{ from: 4, seq: 6, id: "10.0" }]);
    expect(body.note).toContain("new seqs and ids");
    expect(state.outbox.pending("pkg", 0, 10).map((e) => [e.seq, e.id, e.event.title])).toEqual([[5, "5.4", "e"], [6, "10.0", "d"]]);
    const all = (await (await requeue(app, JSON.stringify({ all: true }))).json()) as typeof body;
    expect(all.requeued).toEqual([{ from: 2, seq: 7, id: "11.0" }]);
    expect(state.outbox.deadLetterStatus()[0]).toMatchObject({ deadLetters: 0 });
  });

  test.each([
    ["not JSON", "{", 400, 'body: expected JSON {"seqs": [seq, ...]} or {"all": true}'],
    ["an array", "[1]", 400, "body: expected JSON"],
    ["neither seqs nor all", "{}", 400, "seqs: must hold 1 to"],
    ["an empty seqs", '{"seqs": []}', 400, "seqs: must hold 1 to"],
    ["both seqs and all", '{"seqs": [2], "all": true}', 400, "seqs and all: give one of them"],
    ["all: false", '{"all": false}', 400, "all: must be true"],
    ["a seq that is not a positive integer", '{"seqs": [2, 0]}', 400, "seqs[1]: must be a positive integer"],
    ["a seq twice", '{"seqs": [2, 2]}', 400, "seqs[1]: 2 appears more than once"],
    ["an unknown field", '{"all": true, "force": true}', 400, "force: unknown field"],
    ["a seq that is not a dead letter", '{"seqs": [2, 3]}', 404, "seqs 3 are not dead letters of package pkg"],
  ] as const)("%s: %d naming the problem, nothing requeued", async (_name, body, status, message) => {
    const { app, state } = setup();
    const res = await requeue(app, body);
    expect(res.status).toBe(status);
    expect((await messageOf(res)).message).toContain(message);
    expect(state.outbox.deadLetterStatus()[0]).toMatchObject({ deadLetters: 2 });
  });

  test("a package that is not deployed: 409", async () => {
    const res = await requeue(setup().app, '{"all": true}', "/api/v1/outbox/other/dead-letters/requeue");
    expect(res.status).toBe(409);
    expect((await messageOf(res)).message).toBe("package other is not deployed (any more); nothing was requeued");
  });

  test("roles: read lists but may not requeue, nor may ingest; admin may", async () => {
    const { app } = setup();
    expect((await app.request("/api/v1/outbox/pkg/dead-letters", { headers: as("read") })).status).toBe(200);
    for (const role of ["read", "ingest"] as const) {
      const res = await requeue(app, '{"all": true}', undefined, role);
      expect(res.status).toBe(403);
      expect((await messageOf(res)).message).toContain(`has role '${role}'; POST /api/v1/outbox/pkg/dead-letters/requeue needs 'admin'`);
    }
    expect((await requeue(app, '{"all": true}')).status).toBe(200);
  });

  test("while the node starts or stops: 503", async () => {
    const { app, stopGroup } = setup();
    stopGroup();
    const res = await requeue(app, '{"all": true}');
    expect(res.status).toBe(503);
    expect((await messageOf(res)).message).toBe("node is starting or stopping");
  });
});
