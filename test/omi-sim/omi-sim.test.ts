/** The OMi receiver simulator in-process, on a real libSQL file (server/omi-sim). */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { SimStore, closeKeyRegex } from "../../server/omi-sim/sim-store.ts";
import { createSimApp } from "../../server/omi-sim/sim-app.ts";
import { readOmiEvents, writeOmiEventList } from "../../server/connector/events/omi-xml.ts";
import type { OprEvent } from "../../server/connector/events/event-record.ts";
import { cleanupAll, tempDir } from "../support/node-process.ts";

afterAll(cleanupAll);

const path = "/opr-web/rest/9.10/event_list";
let store: SimStore;
let app: ReturnType<typeof createSimApp>;
beforeEach(async () => {
  store = await SimStore.open(tempDir());
  app = createSimApp(store, { nowMs: () => Date.parse("2026-11-24T10:00:00Z") });
});

const event = (fields: Partial<OprEvent>): OprEvent => ({ title: "t", severity: "warning", state: "open", related_ci_hints: [], custom_attributes: {}, ...fields }) as OprEvent;
/** A delivery as the forwarder sends it (XML); the ids, failing the test if it is refused. */
async function deliverXml(target: SimStore, events: OprEvent[], atIso: string): Promise<string[]> {
  const result = await target.deliver(writeOmiEventList(events), "xml", atIso);
  if (!result.ok) throw new Error(result.error);
  return result.ids;
}
const postJson = (body: unknown) => app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const list = async () => ((await (await app.request(`${path}?format=json`)).json()) as { event_list: Array<OprEvent & { id: string }> }).event_list;

describe("omi-sim event web service", () => {
  test("one event or a list, XML or JSON; GET lists them", async () => {
    const xml = writeOmiEventList([event({ title: "disk full", key: "db1:disk" }), event({ title: "cpu high", key: "db1:cpu" })]);
    const posted = await app.request(path, { method: "POST", headers: { "content-type": "text/xml" }, body: xml });
    expect(posted.status).toBe(200);
    expect(((await posted.json()) as { ids: string[] }).ids).toEqual(["omi-1", "omi-2"]);
    expect((await postJson({ event: event({ title: "third" }) })).status).toBe(200);
    expect((await list()).map((e) => e.title)).toEqual(["disk full", "cpu high", "third"]);
    const asXml = await app.request(path);
    expect(asXml.headers.get("content-type")).toContain("xml");
    expect(await asXml.text()).toContain("<title>disk full</title>");
  });

  test("an event with the key of an active event is merged: duplicate_count grows, same id", async () => {
    await postJson({ event_list: [event({ title: "a", key: "k1" })] });
    const again = await postJson({ event_list: [event({ title: "a (again)", key: "k1" }), event({ title: "a (third)", key: "k1" })] });
    expect(((await again.json()) as { ids: string[] }).ids).toEqual(["omi-1", "omi-1"]);
    const events = await list();
    expect(events.length).toBe(1);
    expect(events[0]).toMatchObject({ id: "omi-1", title: "a (third)", duplicate_count: 2 });
    expect(await store.stats()).toMatchObject({ deliveries: 2, eventsDelivered: 3, events: 1, duplicateCount: 2 });
  });

  test("a close key pattern closes the matching active events; a closed event's key starts afresh", async () => {
    await postJson([event({ title: "down", key: "web1:http:down" }), event({ title: "down2", key: "web2:http:down" }), event({ title: "other", key: "db1:x" })]);
    await postJson({ event: event({ title: "up", key: "web1:http:up", close_key_pattern: "web<*>:http:down" }) });
    const byKey = Object.fromEntries((await list()).map((e) => [e.key, e.state]));
    expect(byKey).toEqual({ "web1:http:down": "closed", "web2:http:down": "closed", "db1:x": "open", "web1:http:up": "open" });
    await postJson({ event: event({ title: "down again", key: "web1:http:down" }) });
    expect((await list()).filter((e) => e.key === "web1:http:down").length).toBe(2);
    expect(closeKeyRegex("a.b<*>").test("a.bxyz")).toBe(true);
    expect(closeKeyRegex("a.b<*>").test("aXbxyz")).toBe(false);
  });

  test("fault modes: fail is a 500, down a 503 closing the connection, slow delays; nothing is stored meanwhile", async () => {
    for (const [mode, status] of [["fail", 500], ["down", 503]] as const) {
      await app.request("/omi-sim/faults", { method: "POST", body: JSON.stringify({ mode }), headers: { "content-type": "application/json" } });
      const refused = await postJson({ event: event({}) });
      expect(refused.status).toBe(status);
    }
    await app.request("/omi-sim/faults", { method: "POST", body: JSON.stringify({ mode: "slow", delayMs: 150 }), headers: { "content-type": "application/json" } });
    const started = performance.now();
    expect((await postJson({ event: event({}) })).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    await app.request("/omi-sim/faults", { method: "POST", body: JSON.stringify({ mode: "ok" }), headers: { "content-type": "application/json" } });
    expect((await store.stats()).deliveries).toBe(1);
    expect((await app.request("/omi-sim/faults", { method: "POST", body: JSON.stringify({ mode: "sideways" }), headers: { "content-type": "application/json" } })).status).toBe(400);
  });

  test("operator changes are applied and listed for back-sync", async () => {
    await postJson({ event: event({ title: "x", key: "k" }) });
    const changed = await app.request("/omi-sim/events/omi-1/change", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ state: "closed", assigned_user: "ops" }) });
    expect(changed.status).toBe(200);
    expect(await changed.json()).toMatchObject({ state: "closed", custom_attributes: { assigned_user: "ops" } });
    const changes = (await (await app.request("/omi-sim/changes?after=0")).json()) as { changes: Array<{ eventId: string; change: object }> };
    expect(changes.changes).toEqual([{ seq: 1, eventId: "omi-1", at: "2026-11-24T10:00:00.000Z", change: { state: "closed", assigned_user: "ops" } }] as never);
    expect((await app.request("/omi-sim/events/nope/change", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(404);
    expect((await app.request("/omi-sim/events/omi-1/change", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ colour: "red" }) })).status).toBe(400);
  });

  test("within one delivery, a later event merges into one inserted earlier in it, and a close key closes it", async () => {
    const ids = await deliverXml(store, [event({ title: "x", key: "k" }), event({ title: "y" }), event({ title: "x again", key: "k" }), event({ title: "z", key: "k2" }), event({ title: "up", key: "k:up", close_key_pattern: "k2" })], "2026-11-24T10:00:00.000Z");
    expect(ids).toEqual(["omi-1", "omi-2", "omi-1", "omi-3", "omi-4"]);
    expect(await store.event("omi-1")).toMatchObject({ title: "x again", duplicate_count: 1 });
    expect((await store.event("omi-3"))?.state).toBe("closed");
  });

  test("data of an earlier simulator build (table events, keyed by id) is moved over at open and keeps merging", async () => {
    const dir = tempDir();
    const { createClient } = await import("@libsql/client");
    const old = createClient({ url: `file:${dir}/omi-sim.db` });
    await old.execute("CREATE TABLE events (id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, key TEXT, active INTEGER NOT NULL, document TEXT NOT NULL)");
    const stored = { ...event({ title: "old", key: "k" }), id: "omi-1", received_at: "2026-11-20T00:00:00.000Z", duplicate_count: 0 };
    await old.execute({ sql: "INSERT INTO events VALUES ('omi-1', 1, 'k', 1, ?)", args: [JSON.stringify(stored)] });
    old.close();
    const reopened = await SimStore.open(dir);
    expect(await deliverXml(reopened, [event({ title: "again", key: "k" }), event({ title: "new" })], "2026-11-24T10:00:00.000Z")).toEqual(["omi-1", "omi-2"]);
    expect(await reopened.event("omi-1")).toMatchObject({ title: "again", duplicate_count: 1, received_at: "2026-11-20T00:00:00.000Z" });
    expect(await reopened.event("omi-x")).toBeNull();
    reopened.close();
  });

  test("after a reopen, a key still merges into its active event, an operator-closed one starts afresh, and new ids continue", async () => {
    const dir = tempDir();
    let first = await SimStore.open(dir);
    await deliverXml(first, [event({ title: "a", key: "k1" }), event({ title: "b", key: "k2" }), event({ title: "c" })], "2026-11-24T10:00:00.000Z");
    await first.change("omi-2", { state: "closed" }, "2026-11-24T10:00:01.000Z");
    first.close();
    first = await SimStore.open(dir);
    expect(await deliverXml(first, [event({ title: "a2", key: "k1" }), event({ title: "b2", key: "k2" })], "2026-11-24T10:00:02.000Z")).toEqual(["omi-1", "omi-4"]);
    expect((await first.event("omi-1"))?.duplicate_count).toBe(1);
    expect(await first.stats()).toMatchObject({ deliveries: 2, eventsDelivered: 5, events: 4, duplicateCount: 1 });
    first.close();
  });

  test("the counts kept in memory are what a recount of the file gives (new, merged, closed, changed, own duplicate_count)", async () => {
    const dir = tempDir();
    const live = await SimStore.open(dir);
    await deliverXml(live, [event({ title: "a", key: "k1" }), event({ title: "b", key: "k2", duplicate_count: 3 }), event({ title: "c" })], "2026-11-24T10:00:00.000Z");
    await deliverXml(live, [event({ title: "a2", key: "k1" }), event({ title: "b2", key: "k2" }), event({ title: "up", key: "x", close_key_pattern: "k<*>" })], "2026-11-24T10:00:01.000Z");
    await live.change("omi-3", { state: "closed" }, "2026-11-24T10:00:02.000Z");
    await deliverXml(live, [event({ title: "a3", key: "k1" })], "2026-11-24T10:00:03.000Z");
    const kept = live.stats();
    expect(kept).toEqual({ deliveries: 3, eventsDelivered: 7, events: 5, duplicateCount: 5 });
    live.close();
    const recounted = await SimStore.open(dir);
    expect(recounted.stats()).toEqual(kept);
    recounted.close();
  });

  test("an event is read back from the delivery that brought it, as a stored document would have held it (XML and JSON, after a reopen)", async () => {
    const dir = tempDir();
    const live = await SimStore.open(dir);
    const rich = event({ title: "disk <full> & more", description: "ünïcode ✓", key: "db1:disk", severity: "critical", category: "Storage", related_ci_hints: ["db1", "host:db1"], custom_attributes: { team: "dba", note: "a \"quoted\" value" }, time_created: "2026-11-24T09:59:00.000Z", duplicate_count: 2 });
    const xmlIds = await deliverXml(live, [event({ title: "first" }), rich], "2026-11-24T10:00:00.000Z");
    const json = await live.deliver(JSON.stringify({ event_list: [{ title: "from json", key: "j1", custom_attributes: { a: "b" } }] }), "json", "2026-11-24T10:00:01.000Z");
    expect(json.ok).toBe(true);
    const expected = (id: string, source: OprEvent, receivedAt: string) => ({ ...source, id, received_at: receivedAt, duplicate_count: source.duplicate_count ?? 0 });
    const reparsed = readOmiEvents(writeOmiEventList([rich]));
    if (!reparsed.ok) throw new Error(reparsed.error);
    live.close();
    const reopened = await SimStore.open(dir);
    expect(await reopened.event(xmlIds[1]!)).toEqual(expected(xmlIds[1]!, reparsed.events[0]!, "2026-11-24T10:00:00.000Z"));
    expect(await reopened.event("omi-3")).toMatchObject({ title: "from json", key: "j1", custom_attributes: { a: "b" }, received_at: "2026-11-24T10:00:01.000Z" });
    expect((await reopened.events()).map((e) => e.id)).toEqual(["omi-1", "omi-2", "omi-3"]);
    expect(reopened.stats()).toEqual({ deliveries: 2, eventsDelivered: 3, events: 3, duplicateCount: 2 });
    expect(await deliverXml(reopened, [event({ title: "again", key: "db1:disk" })], "2026-11-24T10:00:02.000Z")).toEqual(["omi-2"]);
    expect(await reopened.event("omi-2")).toMatchObject({ title: "again", duplicate_count: 3, received_at: "2026-11-24T10:00:00.000Z" });
    reopened.close();
  });

  test("one delivery whose new events are interrupted (a merge, an own duplicate_count, a closed event, no key) reads back event by event after a reopen", async () => {
    const dir = tempDir();
    const live = await SimStore.open(dir);
    await deliverXml(live, [event({ title: "earlier", key: "old" })], "2026-11-24T10:00:00.000Z");
    const batch = [
      event({ title: "p0", key: "a" }),
      event({ title: "p1", key: "b" }),
      event({ title: "p2 merges into earlier", key: "old" }),
      event({ title: "p3", key: "c" }),
      event({ title: "p4 counted", key: "d", duplicate_count: 4 }),
      event({ title: "p5 closed", key: "e", state: "closed" }),
      event({ title: "p6 no key" }),
      event({ title: "p7", key: "f" }),
    ];
    expect(await deliverXml(live, batch, "2026-11-24T10:00:01.000Z")).toEqual(["omi-2", "omi-3", "omi-1", "omi-4", "omi-5", "omi-6", "omi-7", "omi-8"]);
    live.close();
    const reopened = await SimStore.open(dir);
    const read = await reopened.events();
    expect(read.map((e) => [e.id, e.title, e.key, e.state, e.duplicate_count])).toEqual([
      ["omi-1", "p2 merges into earlier", "old", "open", 1],
      ["omi-2", "p0", "a", "open", 0],
      ["omi-3", "p1", "b", "open", 0],
      ["omi-4", "p3", "c", "open", 0],
      ["omi-5", "p4 counted", "d", "open", 4],
      ["omi-6", "p5 closed", "e", "closed", 0],
      ["omi-7", "p6 no key", "", "open", 0],
      ["omi-8", "p7", "f", "open", 0],
    ]);
    // The keys went in with their events: each still merges (the closed one starts afresh).
    expect(await deliverXml(reopened, [event({ title: "a again", key: "a" }), event({ title: "f again", key: "f" }), event({ title: "e anew", key: "e" })], "2026-11-24T10:00:02.000Z")).toEqual(["omi-2", "omi-8", "omi-9"]);
    reopened.close();
  });

  test("data of the previous build (table omi_events, a document per event; deliveries without a format) is moved over at open", async () => {
    const dir = tempDir();
    const { createClient } = await import("@libsql/client");
    const old = createClient({ url: `file:${dir}/omi-sim.db` });
    await old.execute("CREATE TABLE omi_events (seq INTEGER PRIMARY KEY, key TEXT, active INTEGER NOT NULL, document TEXT NOT NULL)");
    await old.execute("CREATE TABLE deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, events INTEGER NOT NULL, body TEXT NOT NULL)");
    const stored = { ...event({ title: "old", key: "k" }), id: "omi-1", received_at: "2026-11-20T00:00:00.000Z", duplicate_count: 4 };
    await old.execute({ sql: "INSERT INTO omi_events VALUES (1, 'k', 1, ?)", args: [JSON.stringify(stored)] });
    await old.execute({ sql: "INSERT INTO deliveries (received_at, events, body) VALUES ('2026-11-20T00:00:00.000Z', 1, ?)", args: [writeOmiEventList([event({ title: "old", key: "k" })])] });
    old.close();
    const reopened = await SimStore.open(dir);
    expect(reopened.stats()).toEqual({ deliveries: 1, eventsDelivered: 1, events: 1, duplicateCount: 4 });
    expect(await deliverXml(reopened, [event({ title: "again", key: "k" }), event({ title: "new" })], "2026-11-24T10:00:00.000Z")).toEqual(["omi-1", "omi-2"]);
    expect(await reopened.event("omi-1")).toMatchObject({ title: "again", duplicate_count: 5, received_at: "2026-11-20T00:00:00.000Z" });
    expect((await reopened.deliveries(0, { limit: 10, withBody: false })).map((d) => d.seq)).toEqual([1, 2]);
    expect((await reopened.event("omi-2"))?.title).toBe("new");
    reopened.close();
  });

  test("the listing pages by id on request (after=SEQ, limit=N); a bad page is a 400 naming the parameter", async () => {
    await postJson(Array.from({ length: 5 }, (_, i) => event({ title: `e${i + 1}` })));
    const page = async (query: string) => app.request(`${path}?format=json${query}`);
    const titles = async (query: string) => ((await (await page(query)).json()) as { event_list: OprEvent[] }).event_list.map((e) => e.title);
    expect(await titles("&after=2&limit=2")).toEqual(["e3", "e4"]);
    expect(await titles("&after=4")).toEqual(["e5"]);
    expect(await titles("&limit=1")).toEqual(["e1"]);
    expect(await titles("")).toEqual(["e1", "e2", "e3", "e4", "e5"]);
    for (const [query, field] of [["&after=-1", "after"], ["&after=x", "after"], ["&limit=0", "limit"], ["&limit=10001", "limit"]] as const) {
      const res = await page(query);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toStartWith(field);
    }
  });

  test("JSON: duplicate_count null is not set (0); anything but a non-negative integer is refused", async () => {
    expect((await postJson({ event: { title: "n", duplicate_count: null } })).status).toBe(200);
    expect(await store.event("omi-1")).toMatchObject({ title: "n", duplicate_count: 0 });
    for (const bad of ["3", -1, 1.5]) expect((await postJson({ event: { title: "b", duplicate_count: bad } })).status).toBe(400);
  });

  test("a write that fails is rolled back and the index rebuilt from the file before anything else runs: the next delivery goes through", async () => {
    const dir = tempDir();
    const live = await SimStore.open(dir);
    await deliverXml(live, [event({ title: "a", key: "k" })], "2026-11-24T10:00:00.000Z");
    // Another writer takes the next event's row, so the next delivery's insert fails.
    const { createClient } = await import("@libsql/client");
    const other = createClient({ url: `file:${dir}/omi-sim.db` });
    await other.execute("INSERT INTO stored_events (seq, key, active, duplicates, document) VALUES (2, 'taken', 1, 0, '{\"title\":\"taken\",\"id\":\"omi-2\",\"received_at\":\"2026-11-24T10:00:00.500Z\"}')");
    other.close();
    await expect(deliverXml(live, [event({ title: "b" })], "2026-11-24T10:00:01.000Z")).rejects.toThrow();
    expect(live.stats()).toEqual({ deliveries: 1, eventsDelivered: 1, events: 2, duplicateCount: 0 });
    expect(await deliverXml(live, [event({ title: "c" }), event({ title: "again", key: "taken" })], "2026-11-24T10:00:02.000Z")).toEqual(["omi-3", "omi-2"]);
    expect((await live.events()).map((e) => [e.id, e.title])).toEqual([["omi-1", "a"], ["omi-2", "again"], ["omi-3", "c"]]);
    live.close();
  });

  test("every raw delivery is listed in order, its body as received on request, paged by seq", async () => {
    const xml = writeOmiEventList([event({ title: "x", key: "k" })]);
    await app.request(path, { method: "POST", headers: { "content-type": "text/xml" }, body: xml });
    await app.request(path, { method: "POST", headers: { "content-type": "text/xml" }, body: xml }); // sent twice: one event, two deliveries
    await postJson([event({ title: "y" }), event({ title: "z" })]);
    const page = async (query: string) => (await app.request(`/omi-sim/deliveries${query}`)).json() as Promise<{ deliveries: Array<{ seq: number; events: number; bodyChars: number; body?: string }> }>;
    const all = (await page("")).deliveries;
    expect(all.map((d) => [d.seq, d.events, d.bodyChars])).toEqual([[1, 1, xml.length], [2, 1, xml.length], [3, 2, all[2]!.bodyChars]]);
    expect(all.every((d) => d.body === undefined)).toBe(true);
    const withBodies = (await page("?after=1&limit=1&body=true")).deliveries;
    expect(withBodies.map((d) => [d.seq, d.body])).toEqual([[2, xml]]);
    for (const bad of ["?after=-1", "?limit=0", "?limit=1001", "?after=x"]) {
      const res = await app.request(`/omi-sim/deliveries${bad}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/after|limit/);
    }
  });

  test("bad input is a 400 naming the problem and stores nothing", async () => {
    for (const [type, body] of [["application/json", "{"], ["application/json", JSON.stringify({ event: { severity: "major" } })], ["application/json", JSON.stringify({ event: { title: "t", duplicate_count: "3" } })], ["text/xml", "<event_list><event><title>x</title>"], ["text/xml", '<!DOCTYPE x [<!ENTITY a "b">]><event><title>&a;</title></event>']] as const) {
      const res = await app.request(path, { method: "POST", headers: { "content-type": type }, body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message.length).toBeGreaterThan(0);
    }
    expect((await store.stats()).deliveries).toBe(0);
  });
});

describe("omi-sim stopping", () => {
  test("a delivery still in flight when the store closes is a 503 (OMi going away), not a logged crash", async () => {
    const closing = await SimStore.open(tempDir());
    const slowApp = createSimApp(closing);
    await slowApp.request("/omi-sim/faults", { method: "POST", body: JSON.stringify({ mode: "slow", delayMs: 100 }), headers: { "content-type": "application/json" } });
    const inFlight = slowApp.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ event: event({ title: "late" }) }) });
    closing.close();
    const res = await inFlight;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("stopping");
  });
});

describe("opsconn omi-sim (the command)", () => {
  test("serves on the port it prints, keeps its data across restarts, stops on SIGTERM", async () => {
    const { bunPath, repoRoot } = await import("../support/node-process.ts");
    const dir = tempDir();
    const start = async () => {
      const proc = Bun.spawn([bunPath, "server/main.ts", "omi-sim", "--port", "0", "--data", dir], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
      const reader = proc.stdout.getReader();
      const { value } = await reader.read();
      reader.releaseLock();
      const url = (JSON.parse(new TextDecoder().decode(value).split("\n")[0]!) as { url: string }).url;
      return { proc, url };
    };
    let sim = await start();
    const posted = await fetch(`${sim.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ event: { title: "hello", key: "k" } }) });
    expect(posted.status).toBe(200);
    sim.proc.kill("SIGTERM");
    expect(await sim.proc.exited).toBe(0);
    sim = await start();
    const stats = (await (await fetch(`${sim.url}/omi-sim/stats`)).json()) as { events: number; deliveries: number };
    expect(stats).toMatchObject({ events: 1, deliveries: 1 });
    sim.proc.kill("SIGTERM");
    expect(await sim.proc.exited).toBe(0);
  }, 20_000);
});
