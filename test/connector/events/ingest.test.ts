/** One listener request to the events its policy sends, and every way a request is refused (server/connector/events/ingest.ts). */
import { describe, expect, test } from "bun:test";
import { ingest } from "../../../server/connector/events/ingest.ts";
import { parseModel } from "../../../server/config/model/parse-model.ts";
import type { Policy } from "../../../server/config/model/types.ts";
import { oprTextFields } from "../../../server/connector/events/event-record.ts";

function policy(fields: Record<string, unknown>): Policy {
  const parsed = parseModel({ apiVersion: "opsconn/v1", policies: [{ name: "p", type: "event-listener", path: "x", ...fields }], packages: [], aspects: [], templates: [] });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.model.policies[0]!;
}
const nowMs = Date.parse("2026-11-24T12:00:00Z");
const xmlPolicy = policy({ inputFormat: "xml", unmatched: "send", rules: [{ name: "quiet", if: { field: "severity", equals: "normal" }, action: "suppress" }], defaults: { category: "Nagios" } });
const jsonPolicy = policy({ inputFormat: "json", unmatched: "send" });
const alertmanager = policy({
  inputFormat: "json",
  unmatched: "send",
  mapping: { each: "alerts", fields: { title: "${labels.alertname} on ${labels.instance}", severity: "labels.severity", time_created: "startsAt", key: "fingerprint" } },
});

const xml = (events: string[]) => `<event_data_list>${events.map((e) => `<event_data>${e}</event_data>`).join("")}</event_data_list>`;

describe("ingest", () => {
  test("XML batch: sent, suppressed, defaults applied", () => {
    const result = ingest(xmlPolicy, { contentType: "text/xml; charset=utf-8", body: xml(["<title>disk</title><severity>critical</severity><node>db1</node>", "<title>fine</title><severity>normal</severity>"]) }, { nowMs });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.suppressed).toBe(1);
    expect(result.events.map((e) => [e.title, e.severity, e.category, e.related_ci_hints])).toEqual([["disk", "critical", "Nagios", ["db1"]]]);
  });

  test("JSON with event_data's fields: one object, an array, or {event_data: [...]}", () => {
    for (const body of [{ title: "a" }, [{ title: "a" }, { title: "b" }], { event_data: [{ title: "a", custom_attributes: { team: "db" } }] }]) {
      const result = ingest(jsonPolicy, { contentType: "application/json", body: JSON.stringify(body) }, { nowMs });
      expect(result.ok && result.events.length).toBe(Array.isArray(body) ? 2 : 1);
    }
  });

  test("a generic mapping turns an Alertmanager webhook into one event per alert", () => {
    const body = { alerts: [1, 2, 3].map((i) => ({ labels: { alertname: "HighLoad", instance: `web${i}`, severity: "major" }, startsAt: "2026-11-24T11:00:00Z", fingerprint: `f${i}` })) };
    const result = ingest(alertmanager, { contentType: "application/json", body: JSON.stringify(body) }, { nowMs });
    expect(result.ok && result.events.map((e) => [e.title, e.severity, e.key])).toEqual([
      ["HighLoad on web1", "major", "f1"],
      ["HighLoad on web2", "major", "f2"],
      ["HighLoad on web3", "major", "f3"],
    ]);
  });

  const refusals: Array<[string, Policy, string, string, 400 | 415, string]> = [
    ["malformed XML", xmlPolicy, "text/xml", "<event_data><title>x</event_data>", 400, "malformed event XML"],
    ["a DOCTYPE (no entity expansion)", xmlPolicy, "text/xml", '<!DOCTYPE a [<!ENTITY b "c">]><event_data><title>&b;</title></event_data>', 400, "DOCTYPE"],
    ["an unknown XML field", xmlPolicy, "text/xml", "<event_data><titel>x</titel></event_data>", 400, "titel"],
    ["a wrong content type", xmlPolicy, "text/plain", "x", 415, "not accepted"],
    ["JSON to an XML policy", xmlPolicy, "application/json", "{}", 415, "takes XML"],
    ["malformed JSON", jsonPolicy, "application/json", "{", 400, "malformed JSON"],
    ["JSON nested too deep", jsonPolicy, "application/json", "[".repeat(100) + "]".repeat(100), 400, "nested deeper"],
    ["a non-string JSON field", jsonPolicy, "application/json", JSON.stringify({ title: 5 }), 400, "field title must be a string"],
    ["an empty JSON batch", jsonPolicy, "application/json", "[]", 400, "no events"],
    ["a mapping that misses its array", alertmanager, "application/json", JSON.stringify({ alerts: 5 }), 400, "mapping"],
    ["a mapping that yields an invalid time", alertmanager, "application/json", JSON.stringify({ alerts: [{ labels: {}, startsAt: "yesterday" }] }), 400, "time_created"],
  ];
  test.each(refusals)("refuses %s", (_name, p, contentType, body, status, fragment) => {
    const result = ingest(p, { contentType, body }, { nowMs });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.status).toBe(status);
    expect(result.error).toContain(fragment);
  });

  test("one bad event refuses the whole batch", () => {
    const body = { alerts: [{ labels: { alertname: "ok" }, startsAt: "2026-11-24T11:00:00Z" }, { labels: {}, startsAt: "not a time" }] };
    const result = ingest(alertmanager, { contentType: "application/json", body: JSON.stringify(body) }, { nowMs });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toContain("event 2");
  });

  test("every text field is bounded at 64 KiB characters: one character more in any of them refuses the request, naming the field", () => {
    const send = (fields: Record<string, string>) => ingest(jsonPolicy, { contentType: "application/json", body: JSON.stringify([{ title: "ok" }, fields]) }, { nowMs });
    for (const field of oprTextFields.filter((f) => f !== "time_created" && f !== "severity" && f !== "state")) {
      expect(send({ [field]: "x".repeat(64 * 1024) }).ok).toBe(true);
      expect(send({ [field]: "x".repeat(64 * 1024 + 1) })).toEqual({ ok: false, status: 400, error: `event 2: field ${field} is longer than 65536 characters; nothing was accepted` });
    }
  });

  test("an event keeps at most 256 custom attributes: the 257th refuses the request, whether sent or set by the policy", () => {
    const attributes = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`a${i}`, "v"]));
    const send = (p: Policy, n: number) => ingest(p, { contentType: "application/json", body: JSON.stringify([{ title: "ok" }, { title: "many", custom_attributes: attributes(n) }]) }, { nowMs });
    expect(send(jsonPolicy, 256)).toMatchObject({ ok: true, events: [{ title: "ok" }, { title: "many" }] });
    expect(send(jsonPolicy, 257)).toEqual({ ok: false, status: 400, error: "event 2: more than 256 custom attributes; nothing was accepted" });
    const addsOne = policy({ inputFormat: "json", unmatched: "send", defaults: { "custom_attributes.extra": "x" } });
    expect(send(addsOne, 255).ok).toBe(true);
    expect(send(addsOne, 256)).toMatchObject({ ok: false, status: 400 });
  });
});
