/** The event policy engine (server/connector/policies/policy-engine.ts). */
import { afterEach, describe, expect, test } from "bun:test";
import { AssertionError } from "../../../server/assert.ts";
import { parseModel } from "../../../server/config/model/parse-model.ts";
import type { Policy } from "../../../server/config/model/types.ts";
import type { InboundEvent, OprEvent } from "../../../server/connector/events/event-record.ts";
import { mapJson } from "../../../server/connector/policies/json-mapping.ts";
import { evaluate, recordOf, settingKeyProblem, untitled, type Outcome } from "../../../server/connector/policies/policy-engine.ts";

const nowMs = Date.UTC(2024, 4, 1, 12, 0, 0);
const nowIso = "2024-05-01T12:00:00.000Z";

/** A real validated policy: the fields given, wrapped in a minimal model and run through parseModel. */
function policyOf(fields: Record<string, unknown>): Policy {
  const policy = { name: "p", type: "event-listener", path: "events", inputFormat: "xml", ...fields };
  const result = parseModel({ apiVersion: "opsconn/v1", policies: [policy], packages: [], aspects: [], templates: [] });
  if (!result.ok) throw new Error(`invalid policy: ${JSON.stringify(result.problems)}`);
  const [parsed] = result.model.policies;
  if (parsed === undefined) throw new Error("no policy");
  return parsed;
}

function inbound(fields: Partial<InboundEvent>): InboundEvent {
  return { custom_attributes: {}, ...fields };
}

function sent(outcome: Outcome): OprEvent {
  if (outcome.kind !== "send") throw new Error(`expected an event to send, got ${outcome.kind}`);
  return outcome.event;
}

/** The event a policy sends for a record; rules given as `set` of one catch-all send rule. */
function eventFor(record: Record<string, unknown>, policy: { defaults?: Record<string, unknown>; set?: Record<string, unknown> }): OprEvent {
  const rules = policy.set === undefined ? [] : [{ name: "all", action: "send", set: policy.set }];
  return sent(evaluate(policyOf({ defaults: policy.defaults ?? {}, rules, unmatched: "send" }), record, { nowMs }));
}

describe("conditions: one suppress rule, matched or not", () => {
  const customs = recordOf(inbound({ title: "t", custom_attributes: { team: "ops", empty: "" } }));
  const cases: Array<{ name: string; if: unknown; record: Record<string, unknown>; matched: boolean }> = [
    { name: "equals: same text", if: { field: "severity", equals: "critical" }, record: { severity: "critical" }, matched: true },
    { name: "equals: other text", if: { field: "severity", equals: "critical" }, record: { severity: "major" }, matched: false },
    { name: "equals: text compares case-sensitively", if: { field: "severity", equals: "critical" }, record: { severity: "Critical" }, matched: false },
    { name: "equals: numeric text vs number compares numerically", if: { field: "code", equals: 5 }, record: { code: "5.0" }, matched: true },
    { name: "equals: two numeric texts compare numerically", if: { field: "code", equals: "10" }, record: { code: "10.00" }, matched: true },
    { name: "equals: number field vs numeric text operand", if: { field: "count", equals: "3" }, record: { count: 3 }, matched: true },
    { name: "equals: non-numeric text vs number compares as text", if: { field: "code", equals: 5 }, record: { code: "5 apples" }, matched: false },
    { name: "equals: hex is text, not a number", if: { field: "code", equals: 16 }, record: { code: "0x10" }, matched: false },
    { name: "equals: boolean operand vs text 'true'", if: { field: "flapping", equals: true }, record: { flapping: "true" }, matched: true },
    { name: "equals: boolean operand vs JSON false", if: { field: "flapping", equals: true }, record: { flapping: false }, matched: false },
    { name: "equals: a missing field matches nothing, not even ''", if: { field: "category", equals: "" }, record: {}, matched: false },
    { name: "equals: an object field matches nothing", if: { field: "labels", equals: "[object Object]" }, record: { labels: {} }, matched: false },
    { name: "equals: a custom attribute by custom_attributes.NAME", if: { field: "custom_attributes.team", equals: "ops" }, record: customs, matched: true },
    { name: "regex: matches", if: { field: "title", regex: "^Disk .* full$" }, record: { title: "Disk /var full" }, matched: true },
    { name: "regex: does not match", if: { field: "title", regex: "^Disk .* full$" }, record: { title: "Disk /var 90% used" }, matched: false },
    { name: "regex: a number is tested as text", if: { field: "status", regex: "^4\\d\\d$" }, record: { status: 404 }, matched: true },
    { name: "regex: a missing field never matches, even .*", if: { field: "title", regex: ".*" }, record: {}, matched: false },
    { name: "regex: null never matches", if: { field: "title", regex: ".*" }, record: { title: null }, matched: false },
    { name: "gt: numeric text above", if: { field: "value", gt: 90 }, record: { value: "97.5" }, matched: true },
    { name: "gt: equal is not greater", if: { field: "value", gt: 90 }, record: { value: 90 }, matched: false },
    { name: "gte: equal counts", if: { field: "value", gte: 90 }, record: { value: "90" }, matched: true },
    { name: "lt: below", if: { field: "value", lt: 0 }, record: { value: "-1e3" }, matched: true },
    { name: "lt: equal is not less", if: { field: "value", lt: 10 }, record: { value: 10 }, matched: false },
    { name: "lte: equal counts", if: { field: "value", lte: 10 }, record: { value: " 10 " }, matched: true },
    { name: "gt: non-numeric text does not match", if: { field: "value", gt: 0 }, record: { value: "high" }, matched: false },
    { name: "lt: non-numeric text does not match either", if: { field: "value", lt: 1000 }, record: { value: "high" }, matched: false },
    { name: "lte: a missing field does not match", if: { field: "value", lte: 1000 }, record: {}, matched: false },
    { name: "exists true: present", if: { field: "node", exists: true }, record: { node: "h1" }, matched: true },
    { name: "exists true: empty text is present", if: { field: "node", exists: true }, record: { node: "" }, matched: true },
    { name: "exists true: missing", if: { field: "node", exists: true }, record: {}, matched: false },
    { name: "exists true: JSON null counts as absent", if: { field: "node", exists: true }, record: { node: null }, matched: false },
    { name: "exists false: missing", if: { field: "node", exists: false }, record: {}, matched: true },
    { name: "exists false: present", if: { field: "node", exists: false }, record: { node: "h1" }, matched: false },
    { name: "exists: nested path into a custom attribute", if: { field: "custom_attributes.empty", exists: true }, record: customs, matched: true },
    { name: "exists: inherited names are not fields", if: { field: "custom_attributes.toString", exists: true }, record: customs, matched: false },
    { name: "and: all hold", if: { and: [{ field: "a", equals: "1" }, { field: "b", equals: "2" }] }, record: { a: "1", b: "2" }, matched: true },
    { name: "and: one fails", if: { and: [{ field: "a", equals: "1" }, { field: "b", equals: "2" }] }, record: { a: "1", b: "3" }, matched: false },
    { name: "or: one holds", if: { or: [{ field: "a", equals: "1" }, { field: "b", equals: "2" }] }, record: { a: "0", b: "2" }, matched: true },
    { name: "or: none holds", if: { or: [{ field: "a", equals: "1" }, { field: "b", equals: "2" }] }, record: { a: "0", b: "0" }, matched: false },
    { name: "not: negates a match", if: { not: { field: "a", equals: "1" } }, record: { a: "1" }, matched: false },
    { name: "not: a comparison on a missing field negates to a match", if: { not: { field: "a", equals: "1" } }, record: {}, matched: true },
    {
      name: "nested: and of or and not",
      if: { and: [{ or: [{ field: "sev", equals: "major" }, { field: "sev", equals: "critical" }] }, { not: { field: "maintenance", exists: true } }] },
      record: { sev: "critical" },
      matched: true,
    },
    {
      name: "nested: and of or and not, the not failing",
      if: { and: [{ or: [{ field: "sev", equals: "major" }, { field: "sev", equals: "critical" }] }, { not: { field: "maintenance", exists: true } }] },
      record: { sev: "critical", maintenance: "yes" },
      matched: false,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const policy = policyOf({ rules: [{ name: "r", if: c.if, action: "suppress" }] });
      expect(evaluate(policy, c.record, { nowMs })).toEqual(c.matched ? { kind: "suppressed", rule: "r" } : { kind: "ignored" });
    });
  }
});

describe("rules: order and actions", () => {
  const rules = [
    { name: "drop-ok", if: { field: "state", equals: "ok" }, action: "suppress" },
    { name: "crit", if: { field: "severity", equals: "critical" }, action: "send", set: { category: "paging" } },
    { name: "any-severity", if: { field: "severity", exists: true }, action: "send", set: { category: "general" } },
  ];
  const cases: Array<{ name: string; record: Record<string, unknown>; unmatched?: string; outcome: { kind: string; rule?: string | null; category?: string } }> = [
    { name: "the first matching rule wins over a later one that matches too", record: { severity: "critical" }, outcome: { kind: "send", rule: "crit", category: "paging" } },
    { name: "a rule that does not match passes to the next", record: { severity: "minor" }, outcome: { kind: "send", rule: "any-severity", category: "general" } },
    { name: "an earlier suppress rule beats a send rule", record: { state: "ok", severity: "critical" }, outcome: { kind: "suppressed", rule: "drop-ok" } },
    { name: "unmatched, ignore (the default)", record: { title: "x" }, outcome: { kind: "ignored" } },
    { name: "unmatched, send: defaults only, no rule", record: { title: "x" }, unmatched: "send", outcome: { kind: "send", rule: null, category: "fallback" } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const policy = policyOf({ defaults: { category: "fallback" }, rules, ...(c.unmatched === undefined ? {} : { unmatched: c.unmatched }) });
      const outcome = evaluate(policy, c.record, { nowMs });
      const seen: unknown = outcome.kind === "send" ? { kind: outcome.kind, rule: outcome.rule, category: outcome.event.category } : outcome;
      expect(seen).toEqual(c.outcome);
    });
  }

  test("a rule without `if` matches every record", () => {
    const policy = policyOf({ rules: [{ name: "never", if: { field: "x", exists: true }, action: "send" }, { name: "always", action: "suppress" }], unmatched: "send" });
    expect(evaluate(policy, {}, { nowMs })).toEqual({ kind: "suppressed", rule: "always" });
  });

  test("a send rule's `set` does not leak into the unmatched path", () => {
    const policy = policyOf({ rules: [{ name: "r", if: { field: "x", exists: true }, action: "send", set: { title: "from rule" } }], unmatched: "send" });
    expect(sent(evaluate(policy, { title: "own" }, { nowMs })).title).toBe("own");
    expect(sent(evaluate(policy, { x: "1", title: "own" }, { nowMs })).title).toBe("from rule");
  });
});

describe("building the event", () => {
  test("an XML event: every event_data field lands somewhere", () => {
    const event = inbound({
      title: "CPU high",
      description: "load 12",
      severity: "major",
      state: "open",
      time_created: "2024-05-01T10:00:00Z",
      category: "Performance",
      subcategory: "CPU",
      eti: "CPULoad:High",
      node: "web1.example.com",
      related_ci: "web1",
      subcomponent: "cpu0",
      source_ci: "nagios-main",
      source_event_id: "4711",
      source_event_url: "https://nagios.example.com/e/4711",
      omi_event_key: "web1:cpu",
      custom_attributes: { team: "ops" },
    });
    expect(sent(evaluate(policyOf({ unmatched: "send" }), recordOf(event), { nowMs }))).toEqual({
      title: "CPU high",
      description: "load 12",
      key: "web1:cpu",
      close_key_pattern: "",
      state: "open",
      severity: "major",
      category: "Performance",
      subcategory: "CPU",
      application: "",
      object: "cpu0",
      related_ci_hints: ["web1.example.com"],
      related_ci: "web1",
      time_created: "2024-05-01T10:00:00Z",
      custom_attributes: { team: "ops", eti: "CPULoad:High", source_ci: "nagios-main", source_event_id: "4711", source_event_url: "https://nagios.example.com/e/4711" },
    });
  });

  test("an explicit custom attribute wins over an event_data field of the same name", () => {
    const record = recordOf(inbound({ source_event_id: "from-field", custom_attributes: { source_event_id: "explicit" } }));
    expect(eventFor(record, {}).custom_attributes.source_event_id).toBe("explicit");
  });

  test("OprEvent names in a record (from a JSON mapping) beat their event_data aliases", () => {
    const event = eventFor({ key: "k1", omi_event_key: "k2", object: "o1", subcomponent: "o2", related_ci_hints: ["h1", "h2"], node: "h2" }, {});
    expect([event.key, event.object, event.related_ci_hints]).toEqual(["k1", "o1", ["h1", "h2"]]);
  });

  test("defaults fill only what the input lacks (empty counts as lacking)", () => {
    const event = eventFor({ title: "own", category: "" }, { defaults: { title: "default title", category: "Default", application: "App", "custom_attributes.team": "ops" } });
    expect([event.title, event.category, event.application, event.custom_attributes]).toEqual(["own", "Default", "App", { team: "ops" }]);
  });

  test("a default custom attribute does not replace the input's", () => {
    const record = recordOf(inbound({ custom_attributes: { team: "db" } }));
    expect(eventFor(record, { defaults: { "custom_attributes.team": "ops" } }).custom_attributes).toEqual({ team: "db" });
  });

  test("`set` overrides the input and the defaults, custom attributes too", () => {
    const record = recordOf(inbound({ title: "own", custom_attributes: { team: "db" } }));
    const event = eventFor(record, { defaults: { title: "default", category: "Default" }, set: { title: "rule", category: "Rule", "custom_attributes.team": "ops" } });
    expect([event.title, event.category, event.custom_attributes]).toEqual(["rule", "Rule", { team: "ops" }]);
  });

  test("templates substitute input fields, nested paths and custom attributes; missing ones are empty", () => {
    const record = recordOf(inbound({ title: "Disk full", node: "h1", custom_attributes: { mount: "/var" } }));
    const event = eventFor(record, { set: { title: "${title} on ${node} (${custom_attributes.mount})", description: "[${nope}] [${custom_attributes.nope}]" } });
    expect([event.title, event.description]).toEqual(["Disk full on h1 (/var)", "[] []"]);
  });

  test("defaults are templates over the input as well", () => {
    expect(eventFor({ node: "h1" }, { defaults: { title: "Event from ${node}" } }).title).toBe("Event from h1");
  });

  test("number settings become text", () => {
    expect(eventFor({}, { defaults: { "custom_attributes.priority": 3 }, set: { description: 2.5 } })).toMatchObject({ description: "2.5", custom_attributes: { priority: "3" } });
  });

  test("key and close key pattern are templates like any other setting", () => {
    const event = eventFor({ node: "web1", category: "Disk", custom_attributes: { mount: "/var" } }, { set: { key: "${node}:${category}:${custom_attributes.mount}", close_key_pattern: "${node}:${category}<*>" } });
    expect([event.key, event.close_key_pattern]).toEqual(["web1:Disk:/var", "web1:Disk<*>"]);
  });

  test("related_ci_hints as a setting is one hint; a default does not replace the node's", () => {
    expect(eventFor({}, { defaults: { related_ci_hints: "${missing}host" } }).related_ci_hints).toEqual(["host"]);
    expect(eventFor({ node: "h1" }, { defaults: { related_ci_hints: "other" } }).related_ci_hints).toEqual(["h1"]);
    expect(eventFor({ node: "h1" }, { set: { related_ci_hints: "h2" } }).related_ci_hints).toEqual(["h2"]);
  });

  test("setting keys that name nothing are ignored, and settingKeyProblem says so", () => {
    const event = eventFor({ title: "t" }, { set: { titel: "typo", duplicate_count: 5 } });
    expect(event).not.toHaveProperty("titel");
    expect(event.duplicate_count).toBeUndefined();
    expect(event.title).toBe("t");
    expect(settingKeyProblem("titel")).toMatch(/is not an event field/);
    expect(["title", "close_key_pattern", "related_ci_hints", "custom_attributes.x", "severity_map.crit"].map(settingKeyProblem)).toEqual([null, null, null, null, null]);
  });

  test("attribute names from untrusted input stay plain data", () => {
    // JSON.parse makes "__proto__" an own property, as the XML parser's null-prototype object would.
    const attributes = Object.assign(Object.create(null) as Record<string, string>, JSON.parse('{"__proto__": "p", "constructor": "c"}') as Record<string, string>);
    const event = eventFor(recordOf(inbound({ custom_attributes: attributes })), {});
    expect(Object.entries(event.custom_attributes)).toEqual([
      ["__proto__", "p"],
      ["constructor", "c"],
    ]);
    expect(Object.getPrototypeOf(event.custom_attributes)).toBeNull();
  });
});

describe("guaranteed fields: severity, state, time, title", () => {
  const cases: Array<{ name: string; record: Record<string, unknown>; defaults?: Record<string, unknown>; set?: Record<string, unknown>; expect: Partial<OprEvent> }> = [
    { name: "severity_map translates the input's severity", record: { severity: "crit" }, defaults: { "severity_map.crit": "critical" }, expect: { severity: "critical" } },
    { name: "severity_map leaves unlisted severities alone", record: { severity: "minor" }, defaults: { "severity_map.crit": "critical" }, expect: { severity: "minor" } },
    {
      name: "severity_map entries of `set` replace the defaults' and join them",
      record: { severity: "crit" },
      defaults: { "severity_map.crit": "major", "severity_map.warn": "warning" },
      set: { "severity_map.crit": "critical" },
      expect: { severity: "critical" },
    },
    { name: "severity_map applies to a severity a default supplied", record: {}, defaults: { severity: "P1", "severity_map.P1": "critical" }, expect: { severity: "critical" } },
    { name: "severity_map applies to a severity `set` produced from a template", record: { level: "crit" }, set: { severity: "${level}", "severity_map.crit": "major" }, expect: { severity: "major" } },
    { name: "severity_map values are templates too", record: { severity: "x", mapped: "minor" }, defaults: { "severity_map.x": "${mapped}" }, expect: { severity: "minor" } },
    { name: "an unknown severity becomes unknown", record: { severity: "disaster" }, expect: { severity: "unknown" } },
    { name: "a severity_map to a non-OMi value becomes unknown", record: { severity: "crit" }, defaults: { "severity_map.crit": "urgent" }, expect: { severity: "unknown" } },
    { name: "no severity at all is unknown", record: {}, expect: { severity: "unknown" } },
    { name: "severity case is normalized", record: { severity: "MAJOR" }, expect: { severity: "major" } },
    { name: "state defaults to open", record: {}, expect: { state: "open" } },
    { name: "an OMi state is kept", record: { state: "closed" }, expect: { state: "closed" } },
    { name: "state from `set` (a recovery closes)", record: { state: "OK" }, set: { state: "resolved" }, expect: { state: "resolved" } },
    { name: "a source state OMi does not know becomes open", record: { state: "PROBLEM" }, expect: { state: "open" } },
    { name: "time_created from the input", record: { time_created: "2024-01-02T03:04:05Z" }, expect: { time_created: "2024-01-02T03:04:05Z" } },
    { name: "time_created defaults to nowMs", record: {}, expect: { time_created: nowIso } },
    { name: "time_created from a default", record: {}, defaults: { time_created: "2020-01-01T00:00:00Z" }, expect: { time_created: "2020-01-01T00:00:00Z" } },
    { name: "no title falls back", record: {}, expect: { title: untitled } },
    { name: "a title template that resolves to nothing falls back", record: {}, set: { title: "${summary}" }, expect: { title: "(no title)" } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      expect(eventFor(c.record, { ...(c.defaults === undefined ? {} : { defaults: c.defaults }), ...(c.set === undefined ? {} : { set: c.set }) })).toMatchObject(c.expect);
    });
  }
});

describe("JSON end to end: Alertmanager webhook → mapJson → evaluate", () => {
  const alerts = [
    { status: "firing", labels: { alertname: "NodeDown", instance: "web1:9100", severity: "critical" }, annotations: { summary: "web1 down" }, startsAt: "2024-05-01T10:00:00Z", fingerprint: "f1" },
    { status: "firing", labels: { alertname: "Watchdog", instance: "prom:9090", severity: "none" }, annotations: {}, startsAt: "2024-05-01T10:00:00Z", fingerprint: "f2" },
    { status: "resolved", labels: { alertname: "NodeDown", instance: "db1:9100", severity: "warning" }, annotations: { summary: "db1 down" }, startsAt: "2024-05-01T09:00:00Z", fingerprint: "f3" },
  ];
  const policy = policyOf({
    inputFormat: "json",
    mapping: {
      each: "alerts",
      fields: { title: "annotations.summary", severity: "labels.severity", node: "labels.instance", time_created: "startsAt", source_event_id: "fingerprint", status: "status", alertname: "labels.alertname" },
    },
    defaults: { category: "Prometheus", key: "prom:${alertname}:${node}", "severity_map.none": "normal" },
    rules: [
      { name: "drop-watchdog", if: { field: "alertname", equals: "Watchdog" }, action: "suppress" },
      { name: "resolved", if: { field: "status", equals: "resolved" }, action: "send", set: { state: "closed", close_key_pattern: "prom:${alertname}:${node}" } },
    ],
    unmatched: "send",
  });

  test("three alerts: one sent as is, one suppressed, one closing", () => {
    if (policy.mapping === undefined) throw new Error("mapping lost");
    const mapped = mapJson({ version: "4", status: "firing", alerts }, policy.mapping);
    if (!mapped.ok) throw new Error(mapped.error);
    const outcomes = mapped.records.map((record) => evaluate(policy, record, { nowMs }));
    expect(outcomes.map((o) => [o.kind, o.kind === "ignored" ? null : o.rule])).toEqual([
      ["send", null],
      ["suppressed", "drop-watchdog"],
      ["send", "resolved"],
    ]);
    const [first, , third] = outcomes;
    expect(sent(first as Outcome)).toMatchObject({ title: "web1 down", severity: "critical", state: "open", key: "prom:NodeDown:web1:9100", related_ci_hints: ["web1:9100"], custom_attributes: { source_event_id: "f1" } });
    expect(sent(third as Outcome)).toMatchObject({ state: "closed", severity: "warning", key: "prom:NodeDown:db1:9100", close_key_pattern: "prom:NodeDown:db1:9100", time_created: "2024-05-01T09:00:00Z" });
  });
});

describe("regexes compile once per policy object", () => {
  const realRegExp = globalThis.RegExp;
  afterEach(() => {
    globalThis.RegExp = realRegExp;
  });

  test("many records, two patterns: two compilations; a new policy object compiles again", () => {
    const rules = [
      { name: "a", if: { field: "title", regex: "^disk" }, action: "suppress" },
      { name: "b", if: { field: "title", regex: "full$" }, action: "send" },
    ];
    const policy = policyOf({ rules });
    const again = policyOf({ rules });
    let compiled = 0;
    globalThis.RegExp = new Proxy(realRegExp, {
      construct(target, args: [string]) {
        compiled += 1;
        return new target(...args);
      },
    });
    for (let i = 0; i < 50; i++) evaluate(policy, { title: i % 2 === 0 ? "disk" : "cpu full" }, { nowMs });
    expect(compiled).toBe(2);
    expect(evaluate(again, { title: "cpu full" }, { nowMs }).kind).toBe("send");
    expect(compiled).toBe(4);
  });
});

describe("recordOf and the clock", () => {
  test("recordOf: the fields given, by name, and custom attributes under custom_attributes", () => {
    expect(recordOf(inbound({ title: "t", node: "n", custom_attributes: { a: "1" } }))).toEqual({ title: "t", node: "n", custom_attributes: { a: "1" } });
  });

  test("the same input and nowMs give the same outcome (no hidden clock)", () => {
    const policy = policyOf({ unmatched: "send" });
    expect(evaluate(policy, {}, { nowMs })).toEqual(evaluate(policy, {}, { nowMs }));
    expect(sent(evaluate(policy, {}, { nowMs: nowMs + 1000 })).time_created).toBe("2024-05-01T12:00:01.000Z");
  });

  test("a non-finite nowMs is a bug", () => {
    expect(() => evaluate(policyOf({}), {}, { nowMs: Number.NaN })).toThrow(AssertionError);
  });
});
