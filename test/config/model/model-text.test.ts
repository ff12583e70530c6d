import { describe, expect, test } from "bun:test";
import { exportModel, importModelText, scanYaml } from "../../../server/config/model/model-text.ts";
import { parseModel } from "../../../server/config/model/parse-model.ts";
import type { ConfigModel, ModelResult, Problem } from "../../../server/config/model/types.ts";
import { configLimits } from "../../../server/constants.ts";

/* eslint-disable @typescript-eslint/no-explicit-any -- documents are built freely */
type Doc = any;
const formats = ["yaml", "json"] as const;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function modelOf(doc: unknown): ConfigModel {
  const result = parseModel(doc);
  if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 1));
  return result.model;
}

function problemsOf(result: ModelResult): readonly Problem[] {
  if (result.ok) throw new Error("expected problems, the text was accepted");
  return result.problems;
}

function emptyDoc(): Doc {
  return { apiVersion: "opsconn/v1", policies: [], packages: [], aspects: [], templates: [] };
}

function featureDoc(): Doc {
  return {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "opsconn-ha", nodes: [{ id: "n2", fqdn: "conn2.example.com:8080" }, { id: "n1", fqdn: "[::1]:8080" }] },
    policies: [
      { name: "nagios-metrics", type: "metric-listener", path: "nagios", inputFormat: "json" },
      {
        name: "nagios-events",
        description: "events from Nagios",
        type: "event-listener",
        path: "nagios",
        inputFormat: "xml",
        defaults: { severity: "warning", weight: 1.5 },
        rules: [
          { name: "z-first", if: { and: [{ field: "status", equals: "OK" }, { not: { field: "flapping", exists: true } }] }, action: "suppress" },
          { name: "a-second", if: { or: [{ field: "n", gt: 3 }, { field: "title", regex: "^disk .*full$" }] }, action: "send", set: { title: "${title} (escalated)", n: 0 } },
          { name: "always", action: "send" },
        ],
        unmatched: "send",
      },
      {
        name: "prom-alerts",
        type: "topology-pull",
        url: "https://prom.example.com/api?x=1&y=2",
        intervalSec: 60,
        inputFormat: "json",
        mapping: { each: "data.alerts", fields: { title: "${labels.alertname} on ${labels.instance}", severity: "status", category: { const: "Prometheus" }, level: { const: 3 } } },
      },
    ],
    packages: [
      { name: "prom-ha", policies: ["prom-alerts"], components: ["topology", "events"], weight: 3 },
      { name: "nagios-ha", policies: ["nagios-metrics", "nagios-events"], syncItems: [{ type: "backsync-target", name: "nb", url: "https://nagios.example.com/cmd" }] },
    ],
    aspects: [{ name: "opsconn-ha", description: "HA", ciType: "Running Software", packages: ["prom-ha", "nagios-ha"] }],
    templates: [{ name: "opsconn-system", ciType: "Operations Connector System", aspects: ["opsconn-ha"] }],
  };
}

/** Strings YAML likes to misread: every one must come back as the same string. */
const oddStrings = [
  "it's \"quoted\"",
  "a: b",
  "a:b",
  "key: value # not a comment",
  "#hash",
  "- dash",
  "-",
  "? question",
  "line1\nline2\n",
  "tab\there",
  "\r\nwindows",
  "  leading spaces",
  "trailing spaces  ",
  "",
  " ",
  "héllo ✓ 😀 日本語",
  "yes",
  "No",
  "on",
  "OFF",
  "y",
  "true",
  "False",
  "null",
  "Null",
  "~",
  "123",
  "-12.5",
  "1e3",
  "0x1F",
  "0o17",
  "1_000",
  ".inf",
  "-.inf",
  ".NaN",
  "NaN",
  "Infinity",
  "12:30:00",
  "2001-12-14",
  "@at",
  "`backtick",
  "%percent",
  "&anchor",
  "*alias",
  "!tag",
  "!!str",
  "|pipe",
  ">folded",
  "[x, y]",
  "{a: 1}",
  "a, b",
  "Tom & Jerry",
  "x *y",
  "<<",
  "\\backslash\\",
  "\"",
  "'",
  "''",
  "---",
  "...",
  "--- x",
  "\u0000\u0001\u001f\u007f\u0080\u0085\u009f",
  "\u00a0nbsp\u2028ls\u2029ps\ufeffbom\ufffe\uffff",
  "${not a template here}",
  "http://example.com:8080/a?b=c#d",
];

function oddDoc(): Doc {
  const doc = emptyDoc();
  doc.connectedServer = { name: "s", description: oddStrings.join("|"), nodes: [{ id: "n1", fqdn: "h:1" }] };
  doc.policies = [
    {
      name: "odd",
      description: "multi\nline: description with 'quotes' and \"doubles\"",
      type: "event-listener",
      path: "odd",
      inputFormat: "xml",
      defaults: Object.fromEntries(oddStrings.map((s, i) => [`s${i}`, s])),
      rules: oddStrings.map((s, i) => ({ name: `r${i}`, if: { field: "x", equals: s }, action: "send" })),
    },
    {
      name: "numbers",
      type: "event-listener",
      path: "numbers",
      inputFormat: "xml",
      defaults: { zero: 0, negative: -1, fraction: 1.5, big: 1e21, small: 1e-7, safe: 2 ** 53, tiny: 5e-324, max: Number.MAX_VALUE },
      rules: [
        { name: "string-true", if: { field: "x", equals: "true" }, action: "send" },
        { name: "boolean-true", if: { field: "x", equals: true }, action: "send" },
        { name: "string-1", if: { field: "x", equals: "1" }, action: "send" },
        { name: "number-1", if: { field: "x", equals: 1 }, action: "send" },
      ],
    },
  ];
  // Map keys YAML readers might take for booleans or null.
  doc.policies[1].defaults = { ...doc.policies[1].defaults, y: "key y", null: "key null", true: "key true", on: "key on", _: "underscore" };
  return doc;
}

/** A model near the limits in count: many policies, rules, packages, aspects, templates. */
function largeDoc(): Doc {
  const doc = emptyDoc();
  doc.connectedServer = { name: "big", nodes: range(64).map((i) => ({ id: `node-${i}`, fqdn: `conn${i}.example.com:${8000 + i}` })) };
  doc.policies = range(1000).map((i) => ({
    name: `policy-${String(i).padStart(4, "0")}`,
    ...(i % 2 === 0
      ? { type: listenerTypes[i % 3], path: `path/${i}` }
      : { type: pullTypes[i % 3], url: `http://source-${i}.example.com/api`, intervalSec: 60 + i, timeoutSec: 1 + (i % 60) }),
    inputFormat: i % 4 === 1 ? "json" : "xml",
    ...(i % 4 === 1 ? { mapping: { fields: { title: `\${data.t${i}}`, n: { const: i } } } } : {}),
    defaults: { severity: i % 7 === 0 ? "critical" : "normal", index: i },
    rules: range(i % 5).map((j) => ({ name: `rule-${j}`, if: { and: [{ field: "severity", equals: `s${j}` }, { not: { field: `f${j}`, gte: j } }] }, action: j % 2 === 0 ? "send" : "suppress" })),
  }));
  doc.packages = range(250).map((i) => ({ name: `pkg-${i}`, policies: range(4).map((j) => `policy-${String(i * 4 + j).padStart(4, "0")}`), weight: 1 + (i % 10) }));
  doc.aspects = range(256).map((i) => ({ name: `aspect-${i}`, ciType: "Running Software", packages: [`pkg-${i % 250}`, `pkg-${(i * 7) % 250}`].filter((p, k, all) => all.indexOf(p) === k) }));
  doc.templates = range(256).map((i) => ({ name: `tmpl-${i}`, ciType: "Operations Connector System", aspects: [`aspect-${i}`, `aspect-${(i + 1) % 256}`] }));
  return doc;
}
const listenerTypes = ["event-listener", "metric-listener", "topology-listener"];
const pullTypes = ["event-pull", "metric-pull", "topology-pull"];

function expectRoundTrip(model: ConfigModel): void {
  for (const format of formats) {
    const text = exportModel(model, format);
    const imported = importModelText(text, format);
    if (!imported.ok) throw new Error(`${format}: ${JSON.stringify(imported.problems.slice(0, 5))}`);
    expect(imported.model).toEqual(model);
    expect(exportModel(imported.model, format)).toBe(text);
  }
}

describe("exportModel", () => {
  const tiny = (): Doc => ({
    ...emptyDoc(),
    connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "h1:1" }] },
    policies: [{ name: "p", type: "event-pull", url: "http://h/x", intervalSec: 30, inputFormat: "xml", rules: [{ name: "r", if: { field: "a.b", equals: "yes" }, action: "send" }] }],
    packages: [{ name: "k", policies: ["p"] }],
  });

  test("YAML is canonical, in a fixed block style", () => {
    expect(exportModel(modelOf(tiny()), "yaml")).toBe(
      [
        "apiVersion: opsconn/v1",
        "connectedServer:",
        "  name: ha",
        "  nodes:",
        "    - id: n1",
        "      fqdn: h1:1",
        "policies:",
        "  - name: p",
        "    type: event-pull",
        "    url: http://h/x",
        "    intervalSec: 30",
        "    timeoutSec: 10",
        "    inputFormat: xml",
        "    defaults: {}",
        "    rules:",
        "      - name: r",
        "        if:",
        "          field: a.b",
        '          equals: "yes"',
        "        action: send",
        "    unmatched: ignore",
        "packages:",
        "  - name: k",
        "    policies:",
        "      - p",
        "    components: []",
        "    syncItems: []",
        "    weight: 1",
        "aspects: []",
        "templates: []",
        "",
      ].join("\n"),
    );
  });

  test("JSON is canonical: two-space indentation, keys in document order, a final newline", () => {
    const text = exportModel(modelOf({ ...emptyDoc(), connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "h1:1" }] } }), "json");
    expect(text).toBe(
      '{\n  "apiVersion": "opsconn/v1",\n  "connectedServer": {\n    "name": "ha",\n    "nodes": [\n      {\n        "id": "n1",\n        "fqdn": "h1:1"\n      }\n    ]\n  },\n  "policies": [],\n  "packages": [],\n  "aspects": [],\n  "templates": []\n}\n',
    );
  });

  test("named objects are sorted by name even in a model built by hand", () => {
    const model = modelOf(featureDoc());
    const shuffled: ConfigModel = { ...model, policies: [...model.policies].reverse(), packages: [...model.packages].reverse() };
    for (const format of formats) expect(exportModel(shuffled, format)).toBe(exportModel(model, format));
    const yaml = exportModel(model, "yaml");
    expect(yaml.indexOf("name: nagios-events")).toBeLessThan(yaml.indexOf("name: nagios-metrics"));
    // Rules and reference lists keep their order.
    expect(yaml.indexOf("name: z-first")).toBeLessThan(yaml.indexOf("name: a-second"));
    expect(yaml.indexOf("      - prom-ha\n      - nagios-ha")).toBeGreaterThan(0);
  });

  test("strings YAML would misread are quoted, plain words are not", () => {
    const yaml = exportModel(modelOf(oddDoc()), "yaml");
    for (const quoted of ["yes", "true", "123", "~", "Tom & Jerry", "&anchor", "- dash", "a: b", "#hash", "http://example.com:8080/a?b=c#d"]) {
      expect(yaml).toContain(`equals: ${JSON.stringify(quoted)}\n`);
    }
    for (const plain of ["a:b", "underscore", "key y"]) expect(yaml).toContain(`: ${plain}\n`);
    expect(yaml).toContain('\n      "y": key y\n      "null": key null\n      "true": key true\n      "on": key on\n      _: underscore\n');
    expect(yaml).toContain('equals: "\\x00\\x01\\x1F\\x7F\\x80\\x85\\x9F"\n');
    expect(yaml).toContain("\\u2028ls\\u2029ps\\uFEFFbom\\uFFFE\\uFFFF");
  });
});

describe("round trip: import(export(m)) equals m, export(import(text)) equals text", () => {
  test("a model using every feature", () => expectRoundTrip(modelOf(featureDoc())));
  test("the empty model", () => expectRoundTrip(modelOf(emptyDoc())));
  test("odd strings and numbers", () => expectRoundTrip(modelOf(oddDoc())));

  test("a large generated model", () => {
    const model = modelOf(largeDoc());
    expect(model.policies).toHaveLength(1000);
    expectRoundTrip(model);
  });

  test("every single odd string on its own, as a value and as a description", () => {
    for (const s of oddStrings) {
      const doc = emptyDoc();
      doc.connectedServer = { name: "s", description: s, nodes: [{ id: "n", fqdn: "h:1" }] };
      doc.policies = [{ name: "p", type: "event-listener", path: "p", inputFormat: "xml", defaults: { v: s } }];
      expectRoundTrip(modelOf(doc));
    }
  });

  test("YAML stays within 4x the JSON even for strings it must escape", () => {
    const doc = emptyDoc();
    const nasty = "\u007f".repeat(4096);
    doc.policies = range(4).map((i) => ({ name: `p${i}`, type: "event-listener", path: `p${i}`, inputFormat: "xml", defaults: Object.fromEntries(range(8).map((j) => [`f${j}`, nasty])) }));
    const model = modelOf(doc);
    const yamlBytes = Buffer.byteLength(exportModel(model, "yaml"));
    const jsonBytes = Buffer.byteLength(exportModel(model, "json"));
    expect(yamlBytes).toBeGreaterThan(3 * jsonBytes);
    expect(yamlBytes).toBeLessThanOrEqual(4 * jsonBytes);
    expect(yamlBytes * (configLimits.documentBytesMax / jsonBytes)).toBeLessThanOrEqual(configLimits.textBytesMax);
    expectRoundTrip(model);
  });
});

describe("importModelText reads what people write", () => {
  test("flow style, comments, CRLF, block scalars and quoted indicators", () => {
    const text = [
      "# an opsconn model",
      "apiVersion: opsconn/v1   # the only version",
      "connectedServer:",
      "  name: opsconn-ha",
      "  description: |",
      "    Block text may hold *stars*, &ampersands, !bangs, 'quotes and \"more",
      "      and deeper lines",
      "  nodes: [ { id: n1, fqdn: 'conn1.example.com:8080' } ]",
      "policies:",
      "- name: p",
      "  description: >-",
      "    folded *text",
      "  type: event-listener",
      '  path: "p"',
      "  inputFormat: xml",
      "  defaults: {title: 'it''s *not* an alias', note: \"&neither\", plain: Tom & Jerry, star: x *y}",
      "packages: []",
      "aspects: []",
      "templates: []",
      "",
    ].join("\r\n");
    const result = importModelText(text, "yaml");
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.model.connectedServer?.description).toBe("Block text may hold *stars*, &ampersands, !bangs, 'quotes and \"more\n  and deeper lines\n");
    expect(result.model.policies[0]?.description).toBe("folded *text");
    expect(result.model.policies[0]?.defaults).toEqual({ title: "it's *not* an alias", note: "&neither", plain: "Tom & Jerry", star: "x *y" });
  });

  test("JSON written by hand", () => {
    const result = importModelText('{"apiVersion":"opsconn/v1","policies":[],"packages":[],"aspects":[],"templates":[]}', "json");
    expect(result).toEqual({ ok: true, model: { connectedServer: null, policies: [], packages: [], aspects: [], templates: [] } });
  });
});

describe("importModelText refuses", () => {
  const billionLaughs = [
    "apiVersion: opsconn/v1",
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]",
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]",
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]",
    "policies: [*i]",
    "",
  ].join("\n");

  test("a billion-laughs document, quickly and without expanding it", () => {
    const started = performance.now();
    const problems = problemsOf(importModelText(billionLaughs, "yaml"));
    expect(performance.now() - started).toBeLessThan(200);
    expect(problems.length).toBe(9 + 9 * 8 + 1);
    expect(problems[0]).toEqual({ path: "", message: "line 2, column 4: YAML anchors (&name) are not accepted (aliases are refused)" });
    expect(problems[1]?.message).toStartWith("line 3, column 4: YAML anchors");
    expect(problems[2]?.message).toStartWith("line 3, column 8: YAML aliases (*name) are not accepted");
  });

  const refused: Array<[string, string, string]> = [
    ["an anchor alone", "apiVersion: &v opsconn/v1\n", "line 1, column 13: YAML anchors"],
    ["an alias as a mapping value", "a: 1\nb: *a\n", "line 2, column 4: YAML aliases"],
    ["an alias as a sequence item", "a:\n  - *x\n", "line 2, column 5: YAML aliases"],
    ["an alias as a key", "*a : 1\n", "line 1, column 1: YAML aliases"],
    ["an alias right after a quoted key in flow", '{"k":*a}\n', "line 1, column 6: YAML aliases"],
    ["an alias right after a quoted key in block", '"k":*a\n', "line 1, column 5: YAML aliases"],
    ["an alias after a flow comma", "a: [x,*b]\n", "line 1, column 7: YAML aliases"],
    ["an alias on a flow continuation line", "a: [x,\n  *b]\n", "line 2, column 3: YAML aliases"],
    ["an alias after a multi-line quoted scalar", 'a: "x\n  y"\nb: *c\n', "line 3, column 4: YAML aliases"],
    ["an alias after a block scalar", "a: |\n  *not-this\nb: *this\n", "line 3, column 4: YAML aliases"],
    ["a merge key from an alias", "other:\n  <<: *b\n", "line 2, column 7: YAML aliases"],
    ["a standard tag", "a: !!str 12\n", "line 1, column 4: YAML tags (!tag) are not accepted"],
    ["a custom tag", "a: !custom x\n", "line 1, column 4: YAML tags"],
    ["a verbatim tag", "a: !<tag:yaml.org,2002:str> x\n", "line 1, column 4: YAML tags"],
    ["a tag on a sequence item", "- !x [1]\n", "line 1, column 3: YAML tags"],
    ["a tag after a document marker", "--- !x\na: 1\n", "line 1, column 5: YAML tags"],
    ["a plain scalar continued on the next line", "a: b\n  *c\n", "line 2, column 3: a plain (unquoted) string continues on this line"],
    ["a plain scalar continued, hiding a quote", 'a: b\n  "c\nd: *e\n', "line 2, column 3: a plain (unquoted) string continues"],
    ["a plain value continued after its key line", "a:\n  b\n  c\n", "line 3, column 3: a plain (unquoted) string continues"],
    ["a plain scalar continued inside flow", "a: [x\n y]\n", "line 2, column 2: a plain (unquoted) string continues"],
    ["an indentation indicator", "a: |2\n   x\n", "line 1, column 4: block scalar indentation indicators"],
    ["a second document", "a: 1\n---\nb: 2\n", "line 2, column 1: a second YAML document"],
    ["content after the end marker", "a: 1\n...\nb: 2\n", "line 3, column 1: content after the document end marker"],
    ["flow nesting of 65", `a: ${"[".repeat(65)}${"]".repeat(65)}\n`, "line 1, column 68: the document nests deeper than 64 levels"],
    ["compact sequences 65 deep", `${"- ".repeat(65)}x\n`, "line 1, column 1: the document nests deeper than 64 levels"],
  ];
  test.each(refused)("%s", (_name, text, message) => {
    const problems = problemsOf(importModelText(text, "yaml"));
    expect(problems[0]?.path).toBe("");
    expect(problems[0]?.message).toStartWith(message);
  });

  test("block nesting of 65 levels", () => {
    const text = `${range(65).map((i) => `${" ".repeat(i)}k${i}:`).join("\n")} 1\n`;
    expect(problemsOf(importModelText(text, "yaml"))).toEqual([{ path: "", message: "the document nests deeper than 64 levels" }]);
    const ok = `${range(64).map((i) => `${" ".repeat(i)}k${i}:`).join("\n")} 1\n`;
    expect(problemsOf(importModelText(ok, "yaml"))[0]?.message).toStartWith("unknown key 'k0'");
  });

  test("JSON nesting of 65 levels, but not of 64", () => {
    expect(problemsOf(importModelText(`${"[".repeat(65)}${"]".repeat(65)}`, "json"))).toEqual([{ path: "", message: "the document nests deeper than 64 levels" }]);
    expect(problemsOf(importModelText(`${"[".repeat(64)}${"]".repeat(64)}`, "json"))).toEqual([{ path: "", message: "must be an object (got a list)" }]);
    // Brackets inside strings do not count.
    const quoted = JSON.stringify({ ...emptyDoc(), connectedServer: { name: "s", description: "[".repeat(100), nodes: [{ id: "n", fqdn: "h:1" }] } });
    expect(importModelText(quoted, "json").ok).toBe(true);
  });

  test("text over the size limit, unread", () => {
    const huge = `a: "${"x".repeat(configLimits.textBytesMax)}"\n`;
    expect(problemsOf(importModelText(huge, "yaml"))[0]?.message).toBe(`the text is over ${huge.length} bytes; at most ${configLimits.textBytesMax} are accepted`);
    // Measured in UTF-8 bytes: 2-byte characters count twice.
    const wide = `{"d": "${"é".repeat(configLimits.textBytesMax / 2)}"}`;
    expect(problemsOf(importModelText(wide, "json"))[0]?.message).toBe(`the text is ${configLimits.textBytesMax + 9} bytes; at most ${configLimits.textBytesMax} are accepted`);
  });

  test("malformed text, as a problem", () => {
    expect(problemsOf(importModelText("{", "json"))[0]?.message).toStartWith("not valid JSON: ");
    expect(problemsOf(importModelText("a: [1, 2", "yaml"))[0]?.message).toStartWith("not valid YAML: ");
    expect(problemsOf(importModelText("", "yaml"))).toEqual([{ path: "", message: "must be an object (got null)" }]);
    expect(problemsOf(importModelText("", "json"))[0]?.message).toStartWith("not valid JSON");
  });

  test("a valid text that fails validation reports model paths", () => {
    const text = exportModel(modelOf(featureDoc()), "yaml").replace("weight: 3", "weight: 0");
    expect(problemsOf(importModelText(text, "yaml"))).toEqual([{ path: "packages[1].weight", message: "package 'prom-ha': must be an integer from 1 to 1000" }]);
  });

  test("never throws, whatever prefix of a document it gets", () => {
    for (const format of formats) {
      const text = exportModel(modelOf(oddDoc()), format);
      for (let end = 0; end < text.length; end += 13) expect(() => importModelText(text.slice(0, end), format)).not.toThrow();
    }
  });
});

describe("scanYaml", () => {
  test("finds nothing in canonical exports", () => {
    for (const doc of [featureDoc(), oddDoc()]) expect(scanYaml(exportModel(modelOf(doc), "yaml"))).toEqual([]);
  });

  test("ignores indicators in comments, quotes and plain scalars", () => {
    const text = ["# *a &b !c", "a: 'x *y'  # &z", 'b: "\\" *y"', "c: x!y", "d: Tom & Jerry *", "e: [\"*\", '&', x*y]", "f: {k: v!}"].join("\n");
    expect(scanYaml(text)).toEqual([]);
  });
});
