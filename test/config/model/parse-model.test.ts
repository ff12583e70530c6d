import { describe, expect, test } from "bun:test";
import { canonicalModel, parseModel } from "../../../server/config/model/parse-model.ts";
import { configLimits } from "../../../server/constants.ts";
import { modelOf, problemsOf } from "../../support/parsed-model.ts";

/* eslint-disable @typescript-eslint/no-explicit-any -- documents are mutated freely to make them invalid */
type Doc = any;

/** A valid document using most features; the cases below break one thing each. */
function baseDoc(): Doc {
  return {
    apiVersion: "opsconn/v1",
    connectedServer: {
      name: "opsconn-ha",
      description: "the HA group",
      nodes: [
        { id: "n2", fqdn: "conn2.example.com:8080" },
        { id: "n1", fqdn: "conn1.example.com:8080" },
      ],
    },
    policies: [
      {
        name: "nagios-events",
        type: "event-listener",
        path: "nagios",
        inputFormat: "xml",
        defaults: { severity: "warning", category: "Nagios" },
        rules: [
          { name: "critical", if: { field: "severity", equals: "critical" }, action: "send", set: { severity: "critical", title: "${title} (escalated)" } },
          { name: "drop-ok", if: { and: [{ field: "status", equals: "OK" }, { not: { field: "flapping", exists: true } }] }, action: "suppress" },
        ],
        unmatched: "send",
      },
      {
        name: "prom-alerts",
        type: "event-pull",
        url: "http://127.0.0.1:9000/api/v1/alerts",
        intervalSec: 30,
        timeoutSec: 5,
        inputFormat: "json",
        mapping: { each: "data.alerts", fields: { title: "${labels.alertname} on ${labels.instance}", severity: "status", category: { const: "Prometheus" } } },
      },
      { name: "nagios-metrics", type: "metric-listener", path: "nagios", inputFormat: "json" },
    ],
    packages: [
      {
        name: "nagios-ha",
        policies: ["nagios-events", "nagios-metrics"],
        components: ["events", "metrics", "backsync"],
        syncItems: [{ type: "backsync-target", name: "nagios-backsync", url: "https://nagios.example.com/cmd" }],
        weight: 2,
      },
      { name: "prom-ha", policies: ["prom-alerts"], components: ["events"] },
    ],
    aspects: [{ name: "opsconn-ha", ciType: "Running Software", packages: ["nagios-ha", "prom-ha"] }],
    templates: [{ name: "opsconn-system", ciType: "Operations Connector System", aspects: ["opsconn-ha"] }],
  };
}


/** `{ not: { not: ... { field, equals } } }` with `depth` conditions in all. */
function nestedNot(depth: number): Doc {
  let condition: Doc = { field: "x", equals: 1 };
  for (let i = 1; i < depth; i++) condition = { not: condition };
  return condition;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

type Mutation = (d: Doc) => unknown;
/** [name, mutation (returns a replacement document, or mutates in place), expected [path, message fragment] in order] */
const invalid: Array<[string, Mutation, Array<[string, string]>]> = [
  // the document
  ["a list as the document", () => [], [["", "must be an object (got a list)"]]],
  ["a Date as the document", () => new Date(0), [["", "must be an object (got a non-plain object)"]]],
  ["apiVersion missing", (d) => void delete d.apiVersion, [["apiVersion", "is required"]]],
  ["apiVersion wrong", (d) => void (d.apiVersion = "opsconn/v2"), [["apiVersion", "must be 'opsconn/v1'"]]],
  ["unknown top-level key", (d) => void (d.polices = []), [["polices", "unknown key 'polices' (known: apiVersion, connectedServer, policies, packages, aspects, templates)"]]],
  ["templates missing", (d) => void delete d.templates, [["templates", "is required"]]],
  ["a key that is no identifier", (d) => void (d["my key"] = 1), [['["my key"]', "unknown key 'my key'"]]],
  // connected server
  ["connectedServer a string", (d) => void (d.connectedServer = "opsconn-ha"), [["connectedServer", "must be an object (got string \"opsconn-ha\")"]]],
  ["connectedServer without nodes", (d) => void delete d.connectedServer.nodes, [["connectedServer.nodes", "is required"]]],
  ["no nodes", (d) => void (d.connectedServer.nodes = []), [["connectedServer.nodes", "must have 1 to 64 entries (got 0)"]]],
  ["65 nodes", (d) => void (d.connectedServer.nodes = range(65).map((i) => ({ id: `n${i}`, fqdn: `h${i}:1` }))), [["connectedServer.nodes", "must have 1 to 64 entries (got 65)"]]],
  ["bad node id", (d) => void (d.connectedServer.nodes[0].id = "-n2"), [["connectedServer.nodes[0].id", "connected server 'opsconn-ha', node '-n2': must be a node id"]]],
  ["duplicate node id", (d) => void (d.connectedServer.nodes[1].id = "n2"), [["connectedServer.nodes[1].id", "duplicate node id 'n2' (also at connectedServer.nodes[0])"]]],
  ["fqdn without a port", (d) => void (d.connectedServer.nodes[0].fqdn = "conn2.example.com"), [["connectedServer.nodes[0].fqdn", "must be host:port"]]],
  ["fqdn port out of range", (d) => void (d.connectedServer.nodes[0].fqdn = "conn2.example.com:70000"), [["connectedServer.nodes[0].fqdn", "must be host:port"]]],
  ["one fqdn spelled twice", (d) => void (d.connectedServer.nodes[1].fqdn = "CONN2.example.com:8080"), [["connectedServer.nodes[1].fqdn", "duplicate fqdn 'CONN2.example.com:8080' (also at connectedServer.nodes[0])"]]],
  ["description too long", (d) => void (d.connectedServer.description = "x".repeat(1025)), [["connectedServer.description", "must be at most 1024 characters (got 1025)"]]],
  ["description null", (d) => void (d.connectedServer.description = null), [["connectedServer.description", "must be a string"]]],
  ["description with a lone surrogate", (d) => void (d.connectedServer.description = "bad \ud800"), [["connectedServer.description", "must be valid Unicode"]]],
  ["unknown key in a node", (d) => void (d.connectedServer.nodes[0].address = "x"), [["connectedServer.nodes[0].address", "unknown key 'address' (known: id, fqdn)"]]],
  // policies
  [
    "policy name not a string",
    (d) => void (d.policies[0].name = 42),
    [
      ["policies[0].name", "must be 1-63 characters"],
      ["packages[0].policies[0]", "package 'nagios-ha': policy 'nagios-events' does not exist"],
    ],
  ],
  [
    "duplicate policy name",
    (d) => void (d.policies[2].name = "nagios-events"),
    [
      ["policies[2].name", "duplicate policy name 'nagios-events' (also at policies[0])"],
      ["packages[0].policies[1]", "policy 'nagios-metrics' does not exist"],
    ],
  ],
  ["unknown policy type", (d) => void (d.policies[0].type = "log-listener"), [["policies[0].type", "must be one of event-listener, metric-listener, topology-listener, event-pull"]]],
  ["url on a listener", (d) => void (d.policies[0].url = "http://x/"), [["policies[0].url", "policy 'nagios-events': does not belong to type event-listener"]]],
  ["path on a pull", (d) => void (d.policies[1].path = "prom"), [["policies[1].path", "does not belong to type event-pull (only listener policies have path)"]]],
  ["listener without a path", (d) => void delete d.policies[0].path, [["policies[0].path", "is required"]]],
  ["path with '..'", (d) => void (d.policies[0].path = "a/../b"), [["policies[0].path", "without '..'"]]],
  ["path with '//'", (d) => void (d.policies[0].path = "a//b"), [["policies[0].path", "without '..', '//'"]]],
  ["path with a trailing '/'", (d) => void (d.policies[0].path = "nagios/"), [["policies[0].path", "or a trailing '/'"]]],
  ["path starting with '/'", (d) => void (d.policies[0].path = "/nagios"), [["policies[0].path", "starting with a letter or digit"]]],
  ["pull without a url", (d) => void delete d.policies[1].url, [["policies[1].url", "is required"]]],
  ["ftp url", (d) => void (d.policies[1].url = "ftp://x/y"), [["policies[1].url", "must be an http or https URL with a host"]]],
  ["url that is no url", (d) => void (d.policies[1].url = "not a url"), [["policies[1].url", "must be an http or https URL"]]],
  ["url over 4096 characters", (d) => void (d.policies[1].url = `http://x/${"a".repeat(4096)}`), [["policies[1].url", "must be at most 4096 characters (got 4105)"]]],
  ["interval 0", (d) => void (d.policies[1].intervalSec = 0), [["policies[1].intervalSec", "must be an integer from 1 to 86400"]]],
  ["interval fractional", (d) => void (d.policies[1].intervalSec = 1.5), [["policies[1].intervalSec", "must be an integer from 1 to 86400"]]],
  ["interval as a string", (d) => void (d.policies[1].intervalSec = "30"), [["policies[1].intervalSec", "must be an integer"]]],
  ["timeout above 300", (d) => void (d.policies[1].timeoutSec = 301), [["policies[1].timeoutSec", "must be an integer from 1 to 300"]]],
  ["timeout above the interval", (d) => void Object.assign(d.policies[1], { intervalSec: 20, timeoutSec: 25 }), [["policies[1].timeoutSec", "must be at most intervalSec (20)"]]],
  [
    "default timeout above the interval",
    (d) => void (delete d.policies[1].timeoutSec, (d.policies[1].intervalSec = 5)),
    [["policies[1].timeoutSec", "the default of 10 exceeds intervalSec (5)"]],
  ],
  ["inputFormat yaml", (d) => void (d.policies[0].inputFormat = "yaml"), [["policies[0].inputFormat", "must be one of xml, json"]]],
  ["mapping with xml input", (d) => void (d.policies[0].mapping = { fields: { a: "b" } }), [["policies[0].mapping", "only applies to inputFormat json"]]],
  ["mapping without fields", (d) => void delete d.policies[1].mapping.fields, [["policies[1].mapping.fields", "is required"]]],
  ["mapping with no fields", (d) => void (d.policies[1].mapping.fields = {}), [["policies[1].mapping.fields", "must have 1 to 256 entries (got 0)"]]],
  ["each not a dotted path", (d) => void (d.policies[1].mapping.each = "data..alerts"), [["policies[1].mapping.each", "must be a dotted field path"]]],
  ["malformed placeholder", (d) => void (d.policies[1].mapping.fields.title = "${labels.} on x"), [["policies[1].mapping.fields.title", "placeholder '${labels.' must be ${dotted.path}"]]],
  ["unclosed placeholder", (d) => void (d.policies[1].mapping.fields.title = "x ${labels.alertname"), [["policies[1].mapping.fields.title", "placeholder '${labels.alertname'"]]],
  ["source neither path nor template", (d) => void (d.policies[1].mapping.fields.severity = "not a path"), [["policies[1].mapping.fields.severity", "must be a dotted path (labels.instance), a template"]]],
  ["constant of the wrong type", (d) => void (d.policies[1].mapping.fields.category = { const: true }), [["policies[1].mapping.fields.category.const", "must be a string or a number"]]],
  ["constant with an extra key", (d) => void (d.policies[1].mapping.fields.category = { const: "x", value: 1 }), [["policies[1].mapping.fields.category.value", "unknown key 'value' (known: const)"]]],
  ["target field name not a path", (d) => void (d.policies[1].mapping.fields["1st"] = "status"), [['policies[1].mapping.fields["1st"]', "field name '1st' must be a dotted field path"]]],
  ["__proto__ as a field name", (d) => void (d.policies[0].defaults = JSON.parse('{"__proto__": "x"}')), [["policies[0].defaults.__proto__", "must not use __proto__, prototype or constructor"]]],
  ["default value a boolean", (d) => void (d.policies[0].defaults.severity = true), [["policies[0].defaults.severity", "must be a string or a number"]]],
  ["default value infinite", (d) => void (d.policies[0].defaults.severity = Infinity), [["policies[0].defaults.severity", "must be a finite number"]]],
  ["257 defaults", (d) => void (d.policies[0].defaults = Object.fromEntries(range(257).map((i) => [`f${i}`, i]))), [["policies[0].defaults", "must have 0 to 256 entries (got 257)"]]],
  // rules and conditions
  ["rules not a list", (d) => void (d.policies[0].rules = {}), [["policies[0].rules", "must be a list (got an object)"]]],
  ["1001 rules", (d) => void (d.policies[0].rules = range(1001).map((i) => ({ name: `r${i}`, action: "send" }))), [["policies[0].rules", "must have at most 1000 entries (got 1001)"]]],
  ["duplicate rule name", (d) => void (d.policies[0].rules[1].name = "critical"), [["policies[0].rules[1].name", "duplicate rule name 'critical' (also at policies[0].rules[0])"]]],
  ["unknown rule action", (d) => void (d.policies[0].rules[0].action = "drop"), [["policies[0].rules[0].action", "policy 'nagios-events', rule 'critical': must be one of send, suppress"]]],
  ["rule without an action", (d) => void delete d.policies[0].rules[0].action, [["policies[0].rules[0].action", "is required"]]],
  ["unknown key in a rule", (d) => void (d.policies[0].rules[0].when = {}), [["policies[0].rules[0].when", "unknown key 'when' (known: name, if, action, set)"]]],
  ["unmatched drop", (d) => void (d.policies[0].unmatched = "drop"), [["policies[0].unmatched", "must be one of send, ignore"]]],
  ["regex that does not compile", (d) => void (d.policies[0].rules[0].if = { field: "title", regex: "(" }), [["policies[0].rules[0].if.regex", "does not compile"]]],
  ["regex over 1024 characters", (d) => void (d.policies[0].rules[0].if = { field: "title", regex: "a".repeat(1025) }), [["policies[0].rules[0].if.regex", "must be at most 1024 characters"]]],
  ["two operators", (d) => void (d.policies[0].rules[0].if = { field: "n", gt: 1, lt: 5 }), [["policies[0].rules[0].if", "needs exactly one operator of equals, regex, gt, gte, lt, lte, exists, and, or, not (found gt, lt)"]]],
  ["no operator", (d) => void (d.policies[0].rules[0].if = { field: "n" }), [["policies[0].rules[0].if", "(found none)"]]],
  ["unknown condition key", (d) => void (d.policies[0].rules[0].if = { field: "n", equals: 1, like: "x" }), [["policies[0].rules[0].if.like", "unknown key 'like'"]]],
  ["bad regex inside and", (d) => void (d.policies[0].rules[1].if.and[1] = { field: "title", regex: "[a-" }), [["policies[0].rules[1].if.and[1].regex", "does not compile"]]],
  ["empty and", (d) => void (d.policies[0].rules[1].if = { and: [] }), [["policies[0].rules[1].if.and", "must have 1 to 64 entries (got 0)"]]],
  ["65 conditions in or", (d) => void (d.policies[0].rules[1].if = { or: range(65).map(() => ({ field: "x", exists: true })) }), [["policies[0].rules[1].if.or", "must have 1 to 64 entries (got 65)"]]],
  ["field on an and", (d) => void (d.policies[0].rules[1].if.field = "x"), [["policies[0].rules[1].if.field", "does not belong to an 'and' condition"]]],
  ["condition field not a path", (d) => void (d.policies[0].rules[0].if.field = "a..b"), [["policies[0].rules[0].if.field", "must be a dotted field path"]]],
  ["gt not a number", (d) => void (d.policies[0].rules[0].if = { field: "n", gt: "5" }), [["policies[0].rules[0].if.gt", "must be a finite number"]]],
  ["exists not a boolean", (d) => void (d.policies[0].rules[0].if = { field: "n", exists: "yes" }), [["policies[0].rules[0].if.exists", "must be true or false"]]],
  ["equals an object", (d) => void (d.policies[0].rules[0].if.equals = {}), [["policies[0].rules[0].if.equals", "must be a string, a finite number or a boolean"]]],
  ["not around an invalid condition", (d) => void (d.policies[0].rules[0].if = { not: { field: "x" } }), [["policies[0].rules[0].if.not", "(found none)"]]],
  ["conditions 17 deep", (d) => void (d.policies[0].rules[0].if = nestedNot(17)), [[`policies[0].rules[0].if${".not".repeat(16)}`, "conditions nest deeper than 16 levels"]]],
  ["bad placeholder in set", (d) => void (d.policies[0].rules[0].set.title = "${} x"), [["policies[0].rules[0].set.title", "placeholder '${' must be"]]],
  ["two event listeners on one path", (d) => void (d.policies[2].type = "event-listener"), [["policies[2].path", "another event-listener (policies[0]) already listens on path 'nagios'"]]],
  ["1001 policies", (d) => void (d.policies = range(1001).map((i) => ({ name: `p${i}`, type: "event-listener", path: `p${i}`, inputFormat: "xml" }))), [["policies", "must have at most 1000 entries (got 1001)"]]],
  // packages
  ["package refers to a missing policy", (d) => void d.packages[0].policies.push("ghost"), [["packages[0].policies[2]", "package 'nagios-ha': policy 'ghost' does not exist"]]],
  ["policy in two packages", (d) => void d.packages[1].policies.push("nagios-events"), [["packages[1].policies[1]", "policy 'nagios-events' already belongs to package 'nagios-ha' (packages[0])"]]],
  ["policy listed twice in a package", (d) => void d.packages[0].policies.push("nagios-events"), [["packages[0].policies[2]", "lists policy 'nagios-events' twice (also at packages[0].policies[0])"]]],
  ["package with no policies", (d) => void (d.packages[0].policies = []), [["packages[0].policies", "must have 1 to 256 entries (got 0)"]]],
  ["package without policies", (d) => void delete d.packages[1].policies, [["packages[1].policies", "is required"]]],
  ["policy reference not a string", (d) => void (d.packages[0].policies[0] = 7), [["packages[0].policies[0]", "must be a policy name (got number 7)"]]],
  ["unknown component", (d) => void (d.packages[0].components = ["logs"]), [["packages[0].components[0]", "must be one of events, metrics, topology, backsync"]]],
  ["duplicate component", (d) => void (d.packages[0].components = ["events", "events"]), [["packages[0].components[1]", "duplicate component 'events'"]]],
  ["sync item of unknown type", (d) => void (d.packages[0].syncItems[0].type = "webhook"), [["packages[0].syncItems[0].type", "sync item 'nagios-backsync': must be one of backsync-target"]]],
  ["duplicate sync item name", (d) => void d.packages[0].syncItems.push({ ...d.packages[0].syncItems[0] }), [["packages[0].syncItems[1].name", "duplicate sync item name 'nagios-backsync'"]]],
  ["sync item url not http", (d) => void (d.packages[0].syncItems[0].url = "nagios"), [["packages[0].syncItems[0].url", "must be an http or https URL"]]],
  ["weight 0", (d) => void (d.packages[0].weight = 0), [["packages[0].weight", "must be an integer from 1 to 1000"]]],
  ["weight 1001", (d) => void (d.packages[0].weight = 1001), [["packages[0].weight", "must be an integer from 1 to 1000"]]],
  ["weight as a string", (d) => void (d.packages[0].weight = "2"), [["packages[0].weight", "must be an integer"]]],
  [
    "duplicate package name",
    (d) => void (d.packages[1].name = "nagios-ha"),
    [
      ["packages[1].name", "duplicate package name 'nagios-ha' (also at packages[0])"],
      ["aspects[0].packages[1]", "package 'prom-ha' does not exist"],
    ],
  ],
  // aspects and templates
  ["aspect of another CI type", (d) => void (d.aspects[0].ciType = "Running"), [["aspects[0].ciType", "aspect 'opsconn-ha': must be 'Running Software'"]]],
  ["aspect refers to a missing package", (d) => void (d.aspects[0].packages[1] = "ghost-ha"), [["aspects[0].packages[1]", "package 'ghost-ha' does not exist"]]],
  ["aspect with no packages", (d) => void (d.aspects[0].packages = []), [["aspects[0].packages", "must have 1 to 256 entries"]]],
  ["template without ciType", (d) => void delete d.templates[0].ciType, [["templates[0].ciType", "is required"]]],
  ["template refers to a missing aspect", (d) => void d.templates[0].aspects.push("missing"), [["templates[0].aspects[1]", "template 'opsconn-system': aspect 'missing' does not exist"]]],
  ["template lists an aspect twice", (d) => void d.templates[0].aspects.push("opsconn-ha"), [["templates[0].aspects[1]", "lists aspect 'opsconn-ha' twice"]]],
  ["257 templates", (d) => void (d.templates = range(257).map((i) => ({ name: `t${i}`, ciType: "Operations Connector System", aspects: ["opsconn-ha"] }))), [["templates", "must have at most 256 entries (got 257)"]]],
];

describe("parseModel rejects", () => {
  test("at least 40 cases", () => expect(invalid.length).toBeGreaterThanOrEqual(40));

  test.each(invalid)("%s", (_name, mutate, expected) => {
    const doc = baseDoc();
    const replaced = mutate(doc);
    const problems = problemsOf(replaced === undefined ? doc : replaced);
    expect(problems.map((p) => p.path)).toEqual(expected.map(([path]) => path));
    expected.forEach(([, fragment], i) => expect(problems[i]?.message).toContain(fragment));
  });

  test("five independent mistakes give five problems, in document order", () => {
    const doc = baseDoc();
    doc.apiVersion = "v1";
    doc.connectedServer.nodes[1].fqdn = "conn1";
    doc.policies[0].unmatched = "drop";
    doc.packages[1].weight = 0;
    doc.templates[0].ciType = "Operations Connector";
    expect(problemsOf(doc).map((p) => p.path)).toEqual(["apiVersion", "connectedServer.nodes[1].fqdn", "policies[0].unmatched", "packages[1].weight", "templates[0].ciType"]);
  });

  test("document order does not depend on the input's key order", () => {
    const doc = baseDoc();
    doc.templates[0].ciType = "x";
    doc.apiVersion = "x";
    const reordered = { templates: doc.templates, aspects: doc.aspects, packages: doc.packages, policies: doc.policies, connectedServer: doc.connectedServer, apiVersion: doc.apiVersion };
    expect(problemsOf(reordered).map((p) => p.path)).toEqual(["apiVersion", "templates[0].ciType"]);
  });

  test("a model over the size limit", () => {
    const doc = baseDoc();
    const filler = "x".repeat(configLimits.stringCharsMax);
    doc.policies = range(600).map((i) => ({ name: `p${i}`, type: "event-listener", path: `p${i}`, inputFormat: "xml", defaults: { a: filler, b: filler } }));
    doc.packages = [];
    doc.aspects = [];
    doc.templates = [];
    const problems = problemsOf(doc);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.path).toBe("");
    expect(problems[0]?.message).toMatch(/^the model takes \d+ bytes as JSON; at most 4194304$/);
  });

  test("a flood of mistakes is listed up to the limit and counted beyond it", () => {
    const doc = baseDoc();
    for (const i of range(1500)) doc[`junk${i}`] = i;
    const problems = problemsOf(doc);
    expect(problems).toHaveLength(configLimits.problemsMax + 1);
    expect(problems.at(-1)).toEqual({ path: "", message: "500 more problems not listed" });
  });

  test("a cyclic or hostile input does not loop or throw", () => {
    const doc = baseDoc();
    doc.policies[0].rules[0].if = { not: null };
    doc.policies[0].rules[0].if.not = doc.policies[0].rules[0].if;
    const problems = problemsOf(doc);
    expect(problems.map((p) => p.path)).toEqual([`policies[0].rules[0].if${".not".repeat(16)}`]);
  });
});

describe("parseModel accepts and normalizes", () => {
  test("the base document, with defaults filled in and named objects sorted", () => {
    const model = modelOf(baseDoc());
    expect(model.connectedServer?.nodes.map((n) => n.id)).toEqual(["n1", "n2"]);
    expect(model.policies.map((p) => p.name)).toEqual(["nagios-events", "nagios-metrics", "prom-alerts"]);
    expect(model.packages.find((p) => p.name === "prom-ha")).toEqual({ name: "prom-ha", policies: ["prom-alerts"], components: ["events"], syncItems: [], weight: 1 });
    expect(model.policies.find((p) => p.name === "nagios-metrics")).toEqual({ name: "nagios-metrics", type: "metric-listener", path: "nagios", inputFormat: "json", defaults: {}, rules: [], unmatched: "ignore" });
  });

  test("a pull policy gets the default timeout; absent optional fields stay absent", () => {
    const doc = baseDoc();
    delete doc.policies[1].timeoutSec;
    delete doc.policies[1].mapping;
    const policy = modelOf(doc).policies.find((p) => p.name === "prom-alerts");
    expect(policy).toEqual({ name: "prom-alerts", type: "event-pull", url: "http://127.0.0.1:9000/api/v1/alerts", intervalSec: 30, timeoutSec: 10, inputFormat: "json", defaults: {}, rules: [], unmatched: "ignore" });
    expect(policy !== undefined && "description" in policy).toBe(false);
  });

  test("a minimal document: connectedServer absent or null becomes null", () => {
    const minimal = { apiVersion: "opsconn/v1", policies: [], packages: [], aspects: [], templates: [] };
    const empty = { connectedServer: null, policies: [], packages: [], aspects: [], templates: [] };
    expect(modelOf(minimal)).toEqual(empty);
    expect(modelOf({ ...minimal, connectedServer: null })).toEqual(empty);
  });

  const valid: Array<[string, Mutation]> = [
    ["an event and a metric listener on one path", () => undefined],
    ["conditions exactly 16 deep", (d) => void (d.policies[0].rules[0].if = nestedNot(16))],
    ["64 nodes", (d) => void (d.connectedServer.nodes = range(64).map((i) => ({ id: `n${i}`, fqdn: `h${i}.example.com:1` })))],
    ["256 defaults", (d) => void (d.policies[0].defaults = Object.fromEntries(range(256).map((i) => [`f${i}`, i])))],
    ["1000 rules", (d) => void (d.policies[0].rules = range(1000).map((i) => ({ name: `r${i}`, action: "send" })))],
    ["a timeout equal to the interval", (d) => void Object.assign(d.policies[1], { intervalSec: 7, timeoutSec: 7 })],
    ["an IPv6 node address", (d) => void (d.connectedServer.nodes[0].fqdn = "[::1]:8080")],
    ["a description of exactly 1024 characters", (d) => void (d.connectedServer.description = "d".repeat(1024))],
    ["a listener path with dots and slashes", (d) => void (d.policies[0].path = "nagios/v1.2/events")],
    ["every kind of condition", (d) => void (d.policies[0].rules[0].if = { or: [{ field: "a.b", regex: "^x" }, { field: "n", gte: 1 }, { field: "n", lte: 2 }, { field: "n", lt: 3 }, { field: "b", equals: false }] })],
    ["undefined optional fields in a JS input", (d) => void (d.connectedServer.description = undefined)],
  ];
  test.each(valid)("%s", (_name, mutate) => {
    const doc = baseDoc();
    mutate(doc);
    expect(parseModel(doc).ok).toBe(true);
  });

  test("-0 is normalized to 0", () => {
    const doc = baseDoc();
    doc.policies[0].defaults.severity = -0;
    doc.policies[0].rules[0].if = { field: "n", gt: -0 };
    const policy = modelOf(doc).policies[0] as Doc;
    expect(Object.is(policy.defaults.severity, 0)).toBe(true);
    expect(Object.is(policy.rules[0].if.gt, 0)).toBe(true);
  });

  test("rules and reference lists keep the user's order", () => {
    const doc = baseDoc();
    doc.policies[0].rules.reverse();
    doc.aspects[0].packages.reverse();
    const model = modelOf(doc);
    expect(model.policies[0]?.rules.map((r) => r.name)).toEqual(["drop-ok", "critical"]);
    expect(model.aspects[0]?.packages).toEqual(["prom-ha", "nagios-ha"]);
  });

  test("the input is not modified", () => {
    const doc = baseDoc();
    const before = JSON.stringify(doc);
    modelOf(doc);
    expect(JSON.stringify(doc)).toBe(before);
  });

  test("canonicalModel is idempotent on a parsed model", () => {
    const model = modelOf(baseDoc());
    expect(JSON.stringify(canonicalModel(model))).toBe(JSON.stringify(model));
  });
});
