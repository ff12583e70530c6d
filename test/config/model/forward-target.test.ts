/** A package's forwarding target in the model: `packages[].forward` (parse-model.ts, model-text.ts, resolve.ts). */
import { describe, expect, test } from "bun:test";
import { canonicalModel } from "../../../server/config/model/parse-model.ts";
import { exportModel, importModelText } from "../../../server/config/model/model-text.ts";
import { resolveTemplate } from "../../../server/config/model/resolve.ts";
import { modelOf, problemsOf } from "../../support/parsed-model.ts";

/* eslint-disable @typescript-eslint/no-explicit-any -- documents are mutated freely to make them invalid */
type Doc = any;

function baseDoc(): Doc {
  return {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "conn1.example.com:8080" }] },
    policies: [
      { name: "hook-in", type: "event-listener", path: "hook", inputFormat: "json" },
      { name: "ws-in", type: "event-listener", path: "ws", inputFormat: "json" },
      { name: "omi-in", type: "event-listener", path: "omi", inputFormat: "json" },
    ],
    packages: [
      {
        name: "hook-ha",
        policies: ["hook-in"],
        components: ["events"],
        forward: { type: "webhook", url: "https://hooks.example.com/opsconn?x=1", headers: { "X-Source": "opsconn", "X-Tenant": "a b" }, authorizationEnv: "HOOK_TOKEN" },
      },
      { name: "ws-ha", policies: ["ws-in"], components: ["events"], forward: { type: "websocket" } },
      { name: "omi-ha", policies: ["omi-in"], components: ["events"] },
    ],
    aspects: [{ name: "asp", ciType: "Running Software", packages: ["hook-ha", "ws-ha", "omi-ha"] }],
    templates: [{ name: "tpl", ciType: "Operations Connector System", aspects: ["asp"] }],
  };
}


const hook = "packages[0].forward";
type Mutation = (d: Doc) => unknown;
/** [name, mutation of packages[0] (the webhook) or the document, expected [path, message fragment] in order] */
const invalid: Array<[string, Mutation, Array<[string, string]>]> = [
  ["forward a string", (d) => void (d.packages[0].forward = "webhook"), [[hook, "must be an object like { type: omi } (got string \"webhook\")"]]],
  ["forward a list", (d) => void (d.packages[0].forward = []), [[hook, "must be an object like { type: omi } (got a list)"]]],
  ["forward null", (d) => void (d.packages[0].forward = null), [[hook, "must be an object"]]],
  ["no type", (d) => void delete d.packages[0].forward.type, [[`${hook}.type`, "is required"]]],
  ["unknown type", (d) => void (d.packages[0].forward.type = "kafka"), [[`${hook}.type`, "must be one of omi, webhook, websocket"]]],
  ["unknown key", (d) => void (d.packages[0].forward.retries = 3), [[`${hook}.retries`, "unknown key 'retries' (known: type, url, headers, authorizationEnv)"]]],
  ["a url on websocket", (d) => void (d.packages[1].forward.url = "http://x/"), [["packages[1].forward.url", "package 'ws-ha': does not belong to a forward of type websocket (only webhook has url)"]]],
  ["headers on omi", (d) => void (d.packages[2].forward = { type: "omi", headers: {} }), [["packages[2].forward.headers", "does not belong to a forward of type omi"]]],
  ["an unknown key on omi", (d) => void (d.packages[2].forward = { type: "omi", to: "x" }), [["packages[2].forward.to", "unknown key 'to' (known: type)"]]],
  ["webhook without url", (d) => void delete d.packages[0].forward.url, [[`${hook}.url`, "is required"]]],
  ["url not a string", (d) => void (d.packages[0].forward.url = 80), [[`${hook}.url`, "must be a string"]]],
  ["url that does not parse", (d) => void (d.packages[0].forward.url = "hooks.example.com/x"), [[`${hook}.url`, "must be an http or https URL with a host"]]],
  ["ws url", (d) => void (d.packages[0].forward.url = "ws://hooks.example.com/"), [[`${hook}.url`, "must be an http or https URL"]]],
  ["url with credentials", (d) => void (d.packages[0].forward.url = "https://user:secret@hooks.example.com/"), [[`${hook}.url`, "must not hold credentials (user:password@)"]]],
  ["url over 4096 characters", (d) => void (d.packages[0].forward.url = `https://x/${"a".repeat(4096)}`), [[`${hook}.url`, "must be at most 4096 characters"]]],
  ["headers a list", (d) => void (d.packages[0].forward.headers = ["X-A: 1"]), [[`${hook}.headers`, "must be a map of header name to value (got a list)"]]],
  ["header name with a space", (d) => void (d.packages[0].forward.headers = { "X A": "1" }), [[`${hook}.headers["X A"]`, "header name 'X A' must be 1-64 characters of an HTTP token"]]],
  ["header name with a colon", (d) => void (d.packages[0].forward.headers = { "X-A:": "1" }), [[`${hook}.headers["X-A:"]`, "must be 1-64 characters of an HTTP token"]]],
  ["header name over 64 characters", (d) => void (d.packages[0].forward.headers = { ["X".repeat(65)]: "1" }), [[`${hook}.headers.${"X".repeat(65)}`, "must be 1-64 characters"]]],
  ["authorization as a header", (d) => void (d.packages[0].forward.headers = { Authorization: "Bearer s3cret" }), [[`${hook}.headers.Authorization`, "is a secret and must not be in the replicated model: name an environment variable in authorizationEnv"]]],
  ["content-type as a header", (d) => void (d.packages[0].forward.headers = { "Content-Type": "text/plain" }), [[`${hook}.headers["Content-Type"]`, "is set by the sender and cannot be configured"]]],
  ["host as a header", (d) => void (d.packages[0].forward.headers = { host: "evil" }), [[`${hook}.headers.host`, "is set by the sender"]]],
  ["one header spelled twice", (d) => void (d.packages[0].forward.headers = { "X-A": "1", "x-a": "2" }), [[`${hook}.headers["x-a"]`, "duplicate header 'x-a' (also as 'X-A'; header names ignore case)"]]],
  ["a header value with a line break", (d) => void (d.packages[0].forward.headers = { "X-A": "1\r\nX-Injected: 1" }), [[`${hook}.headers["X-A"]`, "header value must be a string of at most 1024 printable ASCII characters"]]],
  ["a header value with a leading blank", (d) => void (d.packages[0].forward.headers = { "X-A": " 1" }), [[`${hook}.headers["X-A"]`, "without leading or trailing blanks"]]],
  ["a non-ASCII header value", (d) => void (d.packages[0].forward.headers = { "X-A": "café" }), [[`${hook}.headers["X-A"]`, "printable ASCII"]]],
  ["a header value a number", (d) => void (d.packages[0].forward.headers = { "X-A": 1 }), [[`${hook}.headers["X-A"]`, "header value must be a string"]]],
  ["a header value over 1024 characters", (d) => void (d.packages[0].forward.headers = { "X-A": "v".repeat(1025) }), [[`${hook}.headers["X-A"]`, "at most 1024"]]],
  [
    "33 headers",
    (d) => void (d.packages[0].forward.headers = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`X-H${i}`, "v"]))),
    [[`${hook}.headers`, "must have at most 32 entries (got 33)"]],
  ],
  ["authorizationEnv with a dash", (d) => void (d.packages[0].forward.authorizationEnv = "HOOK-TOKEN"), [[`${hook}.authorizationEnv`, "must be an environment variable name"]]],
  ["authorizationEnv starting with a digit", (d) => void (d.packages[0].forward.authorizationEnv = "1TOKEN"), [[`${hook}.authorizationEnv`, "must be an environment variable name"]]],
  ["authorizationEnv a secret by mistake", (d) => void (d.packages[0].forward.authorizationEnv = "Bearer abc"), [[`${hook}.authorizationEnv`, "must be an environment variable name"]]],
  ["authorizationEnv over 128 characters", (d) => void (d.packages[0].forward.authorizationEnv = "T".repeat(129)), [[`${hook}.authorizationEnv`, "at most 128 characters"]]],
  [
    "two mistakes in one forward, in document order",
    (d) => void Object.assign(d.packages[0].forward, { url: "ftp://x/", authorizationEnv: "a-b" }),
    [
      [`${hook}.url`, "must be an http or https URL"],
      [`${hook}.authorizationEnv`, "must be an environment variable name"],
    ],
  ],
];

describe("packages[].forward is refused when", () => {
  test.each(invalid)("%s", (_name, mutate, expected) => {
    const doc = baseDoc();
    mutate(doc);
    const problems = problemsOf(doc);
    expect(problems.map((p) => p.path)).toEqual(expected.map(([path]) => path));
    expected.forEach(([, fragment], i) => expect(problems[i]?.message).toContain(fragment));
  });
});

describe("packages[].forward is accepted", () => {
  const valid: Array<[string, Mutation, unknown]> = [
    ["a webhook with headers and authorizationEnv", () => undefined, baseDoc().packages[0].forward],
    ["a bare webhook", (d) => void (d.packages[0].forward = { type: "webhook", url: "http://127.0.0.1:9/x" }), { type: "webhook", url: "http://127.0.0.1:9/x" }],
    ["an empty headers map", (d) => void (d.packages[0].forward = { type: "webhook", url: "http://h/", headers: {} }), { type: "webhook", url: "http://h/", headers: {} }],
    ["an explicit omi", (d) => void (d.packages[0].forward = { type: "omi" }), { type: "omi" }],
    ["websocket", (d) => void (d.packages[0].forward = { type: "websocket" }), { type: "websocket" }],
    ["a header value with inner blanks and tabs", (d) => void (d.packages[0].forward.headers = { "X-A": "a b\tc" }), { ...baseDoc().packages[0].forward, headers: { "X-A": "a b\tc" } }],
    ["an empty header value", (d) => void (d.packages[0].forward.headers = { "X-A": "" }), { ...baseDoc().packages[0].forward, headers: { "X-A": "" } }],
  ];
  test.each(valid)("%s", (_name, mutate, forward) => {
    const doc = baseDoc();
    mutate(doc);
    expect(modelOf(doc).packages.find((p) => p.name === "hook-ha")?.forward).toEqual(forward as never);
  });

  test("absent stays absent in the model and resolves to omi; headers keep the user's order", () => {
    const model = modelOf(baseDoc());
    const omi = model.packages.find((p) => p.name === "omi-ha");
    expect(omi !== undefined && "forward" in omi).toBe(false);
    const resolved = resolveTemplate(model, "tpl");
    expect(resolved.ok && resolved.packages.map((p) => [p.name, p.forward.type])).toEqual([
      ["hook-ha", "webhook"],
      ["omi-ha", "omi"],
      ["ws-ha", "websocket"],
    ]);
    const doc = baseDoc();
    doc.packages[0].forward.headers = { "X-Z": "1", "X-A": "2" };
    const forward = modelOf(doc).packages.find((p) => p.name === "hook-ha")?.forward;
    expect(forward?.type === "webhook" && Object.keys(forward.headers ?? {})).toEqual(["X-Z", "X-A"]);
  });

  test("canonical key order whatever the input's, and canonicalModel is idempotent", () => {
    const doc = baseDoc();
    doc.packages[0].forward = { authorizationEnv: "HOOK_TOKEN", headers: { "X-A": "1" }, url: "https://h/", type: "webhook" };
    const model = modelOf(doc);
    expect(Object.keys(model.packages.find((p) => p.name === "hook-ha")?.forward ?? {})).toEqual(["type", "url", "headers", "authorizationEnv"]);
    expect(JSON.stringify(canonicalModel(model))).toBe(JSON.stringify(model));
  });
});

describe("export round-trips packages[].forward", () => {
  for (const format of ["yaml", "json"] as const) {
    test(`${format}: import(export(m)) == m, and export is stable`, () => {
      const doc = baseDoc();
      // Strings YAML likes to misread, as header values.
      doc.packages[0].forward.headers = { "X-Yes": "yes", "X-Num": "0123", "X-Colon": "a: b", "X-Hash": "#x", "X-Quote": "it's \"q\"", "X-Null": "null" };
      const model = modelOf(doc);
      const text = exportModel(model, format);
      const back = importModelText(text, format);
      expect(back.ok).toBe(true);
      if (!back.ok) return;
      expect(back.model).toEqual(model);
      expect(exportModel(back.model, format)).toBe(text);
    });
  }

  test("yaml shows the target readably", () => {
    const text = exportModel(modelOf(baseDoc()), "yaml");
    expect(text).toContain(["    forward:", "      type: webhook", '      url: "https://hooks.example.com/opsconn?x=1"', "      headers:", "        X-Source: opsconn", "        X-Tenant: a b", "      authorizationEnv: HOOK_TOKEN"].join("\n"));
    expect(text).toContain(["    forward:", "      type: websocket"].join("\n"));
  });
});
