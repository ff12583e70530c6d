/** JSON input mapping (server/connector/policies/json-mapping.ts). */
import { describe, expect, test } from "bun:test";
import { parseModel } from "../../../server/config/model/parse-model.ts";
import type { Mapping } from "../../../server/config/model/types.ts";
import { mapJson, mappingRecordsMax, substitute, templateCharsMax, valueAt, type MappingResult } from "../../../server/connector/policies/json-mapping.ts";

/** A mapping as a validated policy carries it: through parseModel, never hand-built. */
function mappingOf(mapping: unknown): Mapping {
  const policy = { name: "p", type: "event-listener", path: "p", inputFormat: "json", mapping };
  const result = parseModel({ apiVersion: "opsconn/v1", policies: [policy], packages: [], aspects: [], templates: [] });
  if (!result.ok) throw new Error(`invalid mapping: ${JSON.stringify(result.problems)}`);
  const parsed = result.model.policies[0]?.mapping;
  if (parsed === undefined) throw new Error("the policy lost its mapping");
  return parsed;
}

function recordsOf(result: MappingResult): Record<string, unknown>[] {
  if (!result.ok) throw new Error(`expected records, got error: ${result.error}`);
  return result.records;
}

function errorOf(result: MappingResult): string {
  if (result.ok) throw new Error(`expected an error, got ${result.records.length} records`);
  return result.error;
}

/** A Prometheus Alertmanager webhook (payload version 4) carrying three alerts. */
const alertmanagerWebhook = {
  version: "4",
  groupKey: '{}:{alertname="NodeDown"}',
  truncatedAlerts: 0,
  status: "firing",
  receiver: "opsconn",
  groupLabels: { alertname: "NodeDown" },
  commonLabels: { alertname: "NodeDown", job: "node" },
  commonAnnotations: {},
  externalURL: "http://alertmanager.example.com:9093",
  alerts: [
    {
      status: "firing",
      labels: { alertname: "NodeDown", instance: "web1:9100", job: "node", severity: "critical" },
      annotations: { summary: "web1 is down", description: "no scrape for 5m" },
      startsAt: "2024-05-01T10:00:00Z",
      endsAt: "0001-01-01T00:00:00Z",
      generatorURL: "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0",
      fingerprint: "a1b2c3d4e5f60001",
    },
    {
      status: "firing",
      labels: { alertname: "NodeDown", instance: "web2:9100", job: "node", severity: "warning" },
      annotations: { summary: "web2 is down" },
      startsAt: "2024-05-01T10:01:00Z",
      endsAt: "0001-01-01T00:00:00Z",
      generatorURL: "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0",
      fingerprint: "a1b2c3d4e5f60002",
    },
    {
      status: "resolved",
      labels: { alertname: "NodeDown", instance: "db1:9100", job: "node" },
      annotations: { summary: "db1 is down" },
      startsAt: "2024-05-01T09:00:00Z",
      endsAt: "2024-05-01T09:30:00Z",
      generatorURL: "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0",
      fingerprint: "a1b2c3d4e5f60003",
    },
  ],
};

const alertmanagerMapping = {
  each: "alerts",
  fields: {
    title: "${labels.alertname} on ${labels.instance}",
    description: "annotations.description",
    severity: "labels.severity",
    node: "labels.instance",
    time_created: "startsAt",
    source_event_id: "fingerprint",
    status: "status",
    "custom_attributes.job": "labels.job",
    category: { const: "Prometheus" },
  },
};

describe("mapJson: the Alertmanager webhook", () => {
  test("three alerts become three records, fields mapped per alert, absent sources left out", () => {
    const records = recordsOf(mapJson(alertmanagerWebhook, mappingOf(alertmanagerMapping)));
    expect(records).toEqual([
      {
        title: "NodeDown on web1:9100",
        description: "no scrape for 5m",
        severity: "critical",
        node: "web1:9100",
        time_created: "2024-05-01T10:00:00Z",
        source_event_id: "a1b2c3d4e5f60001",
        status: "firing",
        custom_attributes: { job: "node" },
        category: "Prometheus",
      },
      {
        title: "NodeDown on web2:9100",
        severity: "warning",
        node: "web2:9100",
        time_created: "2024-05-01T10:01:00Z",
        source_event_id: "a1b2c3d4e5f60002",
        status: "firing",
        custom_attributes: { job: "node" },
        category: "Prometheus",
      },
      {
        title: "NodeDown on db1:9100",
        node: "db1:9100",
        time_created: "2024-05-01T09:00:00Z",
        source_event_id: "a1b2c3d4e5f60003",
        status: "resolved",
        custom_attributes: { job: "node" },
        category: "Prometheus",
      },
    ]);
  });
});

interface Case {
  readonly name: string;
  readonly document: unknown;
  /** Goes through parseModel unless `raw` (paths parseModel does not accept yet, like numeric segments). */
  readonly mapping: unknown;
  readonly raw?: true;
  readonly records: Record<string, unknown>[];
}

const cases: Case[] = [
  {
    name: "no `each`: the whole document is the one record",
    document: { host: "h1", msg: "disk full" },
    mapping: { fields: { node: "host", title: "msg" } },
    records: [{ node: "h1", title: "disk full" }],
  },
  {
    name: "a dotted path reaches into nested objects",
    document: { event: { source: { host: "h1" } } },
    mapping: { fields: { node: "event.source.host" } },
    records: [{ node: "h1" }],
  },
  {
    name: "`each` may be a dotted path itself",
    document: { data: { alerts: [{ n: "a" }, { n: "b" }] } },
    mapping: { each: "data.alerts", fields: { title: "n" } },
    records: [{ title: "a" }, { title: "b" }],
  },
  {
    name: "an empty array yields no records",
    document: { alerts: [] },
    mapping: { each: "alerts", fields: { title: "n" } },
    records: [],
  },
  {
    name: "a path keeps the value's JSON type (number, boolean, object)",
    document: { value: 97.5, firing: true, labels: { a: "1" } },
    mapping: { fields: { value: "value", firing: "firing", labels: "labels" } },
    records: [{ value: 97.5, firing: true, labels: { a: "1" } }],
  },
  {
    name: "a template substitutes several placeholders, numbers as text",
    document: { host: "h1", cpu: { load: 12 } },
    mapping: { fields: { title: "load ${cpu.load} on ${host}!" } },
    records: [{ title: "load 12 on h1!" }],
  },
  {
    name: "a template placeholder for a missing or null field reads as empty text",
    document: { host: "h1", owner: null },
    mapping: { fields: { title: "[${nope.deeper}] ${host} <${owner}>" } },
    records: [{ title: "[] h1 <>" }],
  },
  {
    name: "a template placeholder for an object reads as its JSON",
    document: { labels: { a: "1", b: 2 } },
    mapping: { fields: { description: "labels: ${labels}" } },
    records: [{ description: 'labels: {"a":"1","b":2}' }],
  },
  {
    name: "constants, string and number, are the same in every record",
    document: { items: [{}, {}] },
    mapping: { each: "items", fields: { category: { const: "Webhook" }, priority: { const: 3 } } },
    records: [
      { category: "Webhook", priority: 3 },
      { category: "Webhook", priority: 3 },
    ],
  },
  {
    name: "a path that is missing leaves the target out (not null, not empty)",
    document: { host: "h1" },
    mapping: { fields: { node: "host", title: "summary", description: "a.b.c" } },
    records: [{ node: "h1" }],
  },
  {
    name: "dotted targets build nested objects (custom attributes read like XML ones)",
    document: { team: "ops", region: "eu" },
    mapping: { fields: { "custom_attributes.team": "team", "custom_attributes.region": "region", "x.y.z": { const: 1 } } },
    records: [{ custom_attributes: { team: "ops", region: "eu" }, x: { y: { z: 1 } } }],
  },
  {
    name: "elements that are not objects map to empty records",
    document: { items: ["plain", 7, null] },
    mapping: { each: "items", fields: { title: "name" } },
    records: [{}, {}, {}],
  },
  {
    name: "only own properties count: `toString` is not inherited from Object.prototype",
    document: { a: {} },
    mapping: { fields: { title: "a.toString", other: "hasOwnProperty" } },
    records: [{}],
  },
  {
    name: "numeric segments index arrays (items.0.name)",
    document: { items: [{ name: "first" }, { name: "second" }] },
    mapping: { fields: { title: "items.1.name", first: "items.0.name", missing: "items.2.name", text: "${items.0.name}!" } },
    raw: true,
    records: [{ title: "second", first: "first", text: "first!" }],
  },
  {
    name: "a non-numeric segment on an array, and a numeric one on an object key, behave like plain keys",
    document: { items: [{ name: "a" }], byId: { "7": { name: "seven" } } },
    mapping: { fields: { length: "items.length", seven: "byId.7.name" } },
    raw: true,
    records: [{ seven: "seven" }],
  },
  {
    name: "no `each` and an array document: still one record, indexed by numeric paths",
    document: [{ name: "a" }, { name: "b" }],
    mapping: { fields: { first: "0.name", second: "1.name" } },
    raw: true,
    records: [{ first: "a", second: "b" }],
  },
  {
    name: "`each` over a top-level array document with a numeric path",
    document: [[{ n: 1 }, { n: 2 }]],
    mapping: { each: "0", fields: { n: "n" } },
    raw: true,
    records: [{ n: 1 }, { n: 2 }],
  },
];

describe("mapJson: table", () => {
  for (const c of cases) {
    test(c.name, () => {
      const mapping = c.raw === true ? (c.mapping as Mapping) : mappingOf(c.mapping);
      expect(recordsOf(mapJson(c.document, mapping))).toEqual(c.records);
    });
  }
});

describe("mapJson: errors name the path", () => {
  const errorCases: Array<{ name: string; document: unknown; mapping: unknown; error: RegExp }> = [
    { name: "`each` path missing", document: { data: {} }, mapping: { each: "data.alerts", fields: { t: "t" } }, error: /mapping\.each: path 'data\.alerts' is not in the document/ },
    { name: "`each` path holds an object", document: { alerts: { a: 1 } }, mapping: { each: "alerts", fields: { t: "t" } }, error: /'alerts' holds an object, not an array/ },
    { name: "`each` path holds a string", document: { alerts: "x" }, mapping: { each: "alerts", fields: { t: "t" } }, error: /'alerts' holds a string, not an array/ },
    { name: "`each` path holds null", document: { alerts: null }, mapping: { each: "alerts", fields: { t: "t" } }, error: /'alerts' holds null, not an array/ },
    {
      name: "a dotted target runs into a scalar another target set",
      document: { a: "1", b: "2" },
      mapping: { fields: { x: "a", "x.y": "b" } },
      error: /mapping\.fields\.x\.y: another field already set a value where 'x\.y' needs an object/,
    },
    {
      name: "a target would overwrite an object a dotted target built",
      document: { a: "1", b: "2" },
      mapping: { fields: { "x.y": "b", x: "a" } },
      error: /mapping\.fields\.x:/,
    },
  ];
  for (const c of errorCases) {
    test(c.name, () => {
      expect(errorOf(mapJson(c.document, mappingOf(c.mapping)))).toMatch(c.error);
    });
  }
});

describe("mapJson: bounds", () => {
  const mapping = (): Mapping => mappingOf({ each: "items", fields: { n: "n" } });
  const items = (count: number) => ({ items: Array.from({ length: count }, (_, n) => ({ n })) });

  test(`exactly ${mappingRecordsMax} elements map`, () => {
    const records = recordsOf(mapJson(items(mappingRecordsMax), mapping()));
    expect(records.length).toBe(mappingRecordsMax);
    expect(records[mappingRecordsMax - 1]).toEqual({ n: mappingRecordsMax - 1 });
  });

  test(`one element more than ${mappingRecordsMax} is refused, naming the path and the count`, () => {
    expect(errorOf(mapJson(items(mappingRecordsMax + 1), mapping()))).toBe(
      `mapping.each: path 'items' holds ${mappingRecordsMax + 1} elements; at most ${mappingRecordsMax} records per document`,
    );
  });

  test("template output is capped at templateCharsMax", () => {
    const big = "x".repeat(templateCharsMax / 2 + 10);
    const [record] = recordsOf(mapJson({ big }, mappingOf({ fields: { title: "${big}${big}${big}" } })));
    expect(record?.title).toBe("x".repeat(templateCharsMax));
  });
});

describe("path primitives", () => {
  test("valueAt returns undefined past a scalar and for out-of-range indexes", () => {
    expect(valueAt({ a: "text" }, "a.length")).toBeUndefined();
    expect(valueAt({ a: [1] }, "a.1")).toBeUndefined();
    expect(valueAt({ a: [1] }, "a.01")).toBeUndefined();
    // Only canonical indexes: "00" and "0x0" are names an array does not have.
    expect(valueAt({ a: [1] }, "a.00")).toBeUndefined();
    expect(valueAt({ a: [1] }, "a.0x0")).toBeUndefined();
    expect(valueAt({ a: [1] }, "a.0")).toBe(1);
    expect(valueAt(null, "a")).toBeUndefined();
  });

  test("substitute leaves text without placeholders and an unclosed '${' as written", () => {
    expect(substitute("plain text", {})).toBe("plain text");
    expect(substitute("a ${b", { b: "x" })).toBe("a ${b");
    expect(substitute("${a}${a}", { a: true })).toBe("truetrue");
  });
});
