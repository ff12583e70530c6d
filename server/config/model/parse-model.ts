/**
 * @module Validation and normalization of a configuration model document (already parsed from
 * YAML or JSON). Pure. Every problem is collected in one pass, in document order (the canonical
 * key order, then array index), each with the path of the value it concerns, so an operator fixes
 * a document in one round. Unknown keys are problems, never ignored: a typo must not silently
 * fall back to a default.
 *
 * Cross-references are checked in the same pass, at the referring value: the set of names each
 * list declares is collected first (any string `name`, valid or not, so one bad name is reported
 * once, at the name, rather than again at every reference to it).
 */
import { assert, unreachable } from "../../assert.ts";
import { configLimits, forwardTargetLimits, outboxLimits } from "../../constants.ts";
import { isAddress } from "../node-config.ts";
import {
  aspectCiType,
  forwardTypes,
  inputFormats,
  listenerTypes,
  modelApiVersion,
  packageComponents,
  policyTypes,
  ruleActions,
  syncItemTypes,
  templateCiType,
  unmatchedActions,
  type Aspect,
  type Condition,
  type ConfigModel,
  type ConnectedServer,
  type FieldSource,
  type ForwardType,
  type HaPackage,
  type ListenerPolicy,
  type ManagementTemplate,
  type Mapping,
  type ModelResult,
  type PackageForward,
  type Policy,
  type PolicyType,
  type Problem,
  type Rule,
  type ScalarValue,
  type ServerNode,
  type SyncItem,
} from "./types.ts";

/** Names of policies, packages, aspects, templates and nodes (also in URLs: /ws/forward/<package>). */
export const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const fieldPathPattern = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const listenerPathPattern = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
/**
 * Field names end up as property names of records in the policy engine; these would reach
 * Object.prototype there (prototype pollution), so no segment may be one of them.
 */
const reservedSegments = new Set(["__proto__", "prototype", "constructor"]);

const topKeys = ["apiVersion", "connectedServer", "policies", "packages", "aspects", "templates"] as const;
const serverKeys = ["name", "description", "nodes"] as const;
const nodeKeys = ["id", "fqdn"] as const;
const policyKeys = ["name", "description", "type", "path", "url", "intervalSec", "timeoutSec", "inputFormat", "mapping", "defaults", "rules", "unmatched"] as const;
const mappingKeys = ["each", "fields"] as const;
const ruleKeys = ["name", "if", "action", "set"] as const;
const packageKeys = ["name", "description", "policies", "components", "syncItems", "weight", "forward", "outboxBytesMax"] as const;
/** The keys each forward type takes; every one has `type`. */
const forwardKeys: Readonly<Record<ForwardType, readonly string[]>> = { omi: ["type"], webhook: ["type", "url", "headers", "authorizationEnv"], websocket: ["type"] };
const forwardKeysAll = ["type", "url", "headers", "authorizationEnv"] as const;
/** An HTTP token (RFC 9110 §5.6.2): what a header name may be. */
const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Printable ASCII, inner spaces and tabs: no line breaks (header injection), nothing to trim. */
const headerValuePattern = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * Headers a webhook target may not set: the sender sets these itself, and Authorization (with
 * its proxy twin) is a secret that must stay out of the replicated model (authorizationEnv).
 */
const reservedHeaders = new Set(["authorization", "proxy-authorization", "content-type", "content-length", "host", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "expect"]);
const syncItemKeys = ["type", "name", "url"] as const;
const aspectKeys = ["name", "description", "ciType", "packages"] as const;
const templateKeys = ["name", "description", "ciType", "aspects"] as const;
const fieldOperators = ["equals", "regex", "gt", "gte", "lt", "lte", "exists"] as const;
const combinators = ["and", "or", "not"] as const;
const conditionKeys = ["field", ...fieldOperators, ...combinators] as const;
const pullOnlyKeys = ["url", "intervalSec", "timeoutSec"] as const;

type FieldOperator = (typeof fieldOperators)[number];
type Rec = Readonly<Record<string, unknown>>;
/** A problem message for a value, or null when it is fine. */
type Check = (value: unknown) => string | null;

/** Where a value sits: its path, and the names of the objects around it, for messages. */
interface Site {
  readonly path: string;
  readonly label: string;
}

const rootSite: Site = { path: "", label: "" };

/** Collects problems; lists at most problemsMax of them and counts the rest. */
class Report {
  private readonly listed: Problem[] = [];
  count = 0;

  add(site: Site, message: string): void {
    this.count += 1;
    if (this.listed.length < configLimits.problemsMax) this.listed.push({ path: site.path, message: site.label === "" ? message : `${site.label}: ${message}` });
  }

  problems(): readonly Problem[] {
    assert(this.count > 0, "a failed parse has problems");
    const unlisted = this.count - this.listed.length;
    return unlisted === 0 ? this.listed : [...this.listed, { path: "", message: `${unlisted} more problems not listed` }];
  }
}

// ---- sites and small checks ----

function at(site: Site, key: string): Site {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return { path: site.path === "" ? key : `${site.path}.${key}`, label: site.label };
  return { path: `${site.path}[${JSON.stringify(short(key))}]`, label: site.label };
}

function item(site: Site, index: number): Site {
  return { path: `${site.path}[${index}]`, label: site.label };
}

/** Adds "policy 'x'" to the labels of everything inside a named object. */
function named(site: Site, kind: string, name: unknown): Site {
  if (typeof name !== "string") return site;
  const own = `${kind} '${short(name)}'`;
  return { path: site.path, label: site.label === "" ? own : `${site.label}, ${own}` };
}

/** Long or hostile values are cut before they reach a message. */
function short(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 64)}…`;
}

function has(o: Rec, key: string): boolean {
  return Object.hasOwn(o, key) && o[key] !== undefined;
}

function isPlainObject(value: unknown): value is Rec {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

const textCheck =
  (charsMax: number): Check =>
  (v) => {
    if (typeof v !== "string") return "must be a string";
    if (v.length > charsMax) return `must be at most ${charsMax} characters (got ${v.length})`;
    return v.isWellFormed() ? null : "must be valid Unicode (it holds a lone surrogate)";
  };
const anyText = textCheck(configLimits.stringCharsMax);
const checkDescription = textCheck(configLimits.descriptionCharsMax);

const checkName: Check = (v) =>
  typeof v === "string" && namePattern.test(v) ? null : "must be 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit";

const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === "string" && values.includes(v) ? null : `must be one of ${values.join(", ")}`;

const exactly =
  (value: string): Check =>
  (v) =>
    v === value ? null : `must be '${value}'`;

const integerIn =
  (min: number, max: number): Check =>
  (v) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? null : `must be an integer from ${min} to ${max}`;

function fieldPathProblem(v: string): string | null {
  if (v.length > configLimits.stringCharsMax || !fieldPathPattern.test(v)) return "must be a dotted field path like labels.instance";
  return v.split(".").some((segment) => reservedSegments.has(segment)) ? "must not use __proto__, prototype or constructor" : null;
}

const checkFieldPath: Check = (v) => (typeof v === "string" ? fieldPathProblem(v) : "must be a dotted field path like labels.instance");

const checkListenerPath: Check = (v) => {
  const rule = "must be 1-128 characters of letters, digits, '.', '_', '-' or '/', starting with a letter or digit, without '..', '//' or a trailing '/'";
  if (typeof v !== "string" || !listenerPathPattern.test(v)) return rule;
  return v.includes("..") || v.includes("//") || v.endsWith("/") ? rule : null;
};

const checkHttpUrl: Check = (v) => {
  const problem = anyText(v);
  if (problem !== null) return problem;
  const url = URL.parse(v as string);
  return url !== null && (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "" ? null : "must be an http or https URL with a host";
};

/** A template: every "${" opens a placeholder that holds a dotted path and is closed by "}". */
function templateProblem(text: string): string | null {
  let from = text.indexOf("${");
  for (let step = 0; from >= 0 && step < text.length; step++) {
    const end = text.indexOf("}", from);
    const inner = end < 0 ? text.slice(from + 2) : text.slice(from + 2, end);
    if (end < 0 || fieldPathProblem(inner) !== null) return `placeholder '\${${short(inner)}' must be \${dotted.path}, e.g. \${labels.instance}`;
    from = text.indexOf("${", end);
  }
  return null;
}

// ---- generic readers: each reports its problems and returns the value only when it is valid ----

/** Reports a non-object and every unknown key; returns the object when it is one. */
function record(r: Report, value: unknown, site: Site, known: readonly string[]): Rec | undefined {
  if (!isPlainObject(value)) {
    r.add(site, `must be an object (got ${describe(value)})`);
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) r.add(at(site, key), `unknown key '${short(key)}' (known: ${known.join(", ")})`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return isPlainObject(value) ? "an object" : "a non-plain object";
  return `${typeof value} ${short(JSON.stringify(value) ?? String(value))}`;
}

/** Reads an optional or required key; `undefined` when absent or invalid (invalid is reported). */
function take<T>(r: Report, o: Rec, site: Site, key: string, check: Check, required: boolean): T | undefined {
  const s = at(site, key);
  if (!has(o, key)) {
    if (required) r.add(s, "is required");
    return undefined;
  }
  const problem = check(o[key]);
  if (problem === null) return o[key] as T;
  r.add(s, problem);
  return undefined;
}

/** Reads a required key with `read`; a missing key is reported. */
function required<T>(r: Report, o: Rec, site: Site, key: string, read: (value: unknown, s: Site) => T | undefined): T | undefined {
  if (has(o, key)) return read(o[key], at(site, key));
  r.add(at(site, key), "is required");
  return undefined;
}

/** A list of `min`..`max` entries; entries past `max` are not examined (the loop stays bounded). */
function list<T>(r: Report, value: unknown, site: Site, bounds: { min: number; max: number }, each: (v: unknown, s: Site, i: number) => T | undefined): T[] | undefined {
  if (!Array.isArray(value)) {
    r.add(site, `must be a list (got ${describe(value)})`);
    return undefined;
  }
  if (value.length < bounds.min || value.length > bounds.max) {
    r.add(site, bounds.min === 0 ? `must have at most ${bounds.max} entries (got ${value.length})` : `must have ${bounds.min} to ${bounds.max} entries (got ${value.length})`);
  }
  const out: T[] = [];
  for (let i = 0; i < Math.min(value.length, bounds.max); i++) {
    const parsed = each(value[i], item(site, i), i);
    if (parsed !== undefined) out.push(parsed);
  }
  return out;
}

/** A map of field name → value, keys in the user's order. */
function fieldMap<T>(r: Report, value: unknown, site: Site, min: number, each: (v: unknown, s: Site) => T | undefined): Record<string, T> | undefined {
  if (!isPlainObject(value)) {
    r.add(site, `must be a map of field name to value (got ${describe(value)})`);
    return undefined;
  }
  const keys = Object.keys(value);
  const max = configLimits.mapEntriesMax;
  if (keys.length < min || keys.length > max) r.add(site, `must have ${min} to ${max} entries (got ${keys.length})`);
  const entries: Array<[string, T | undefined]> = [];
  for (const key of keys.slice(0, max)) {
    const s = at(site, key);
    const keyProblem = fieldPathProblem(key);
    if (keyProblem !== null) r.add(s, `field name '${short(key)}' ${keyProblem}`);
    entries.push([key, each(value[key], s)]);
  }
  // fromEntries defines own properties, so even a key like "__proto__" could not touch the prototype.
  return Object.fromEntries(entries) as Record<string, T>;
}

/** Remembers the first position of each key; a later duplicate is a problem. */
function unique(r: Report, seen: Map<string, number>, key: string, site: Site, options: { what: string; list: string; position: number; shown?: string }): void {
  const first = seen.get(key);
  if (first === undefined) seen.set(key, options.position);
  else r.add(site, `duplicate ${options.what} '${short(options.shown ?? key)}' (also at ${options.list}[${first}])`);
}

/** -0 is dropped: JSON and YAML write it as 0, and a model must survive its own export. */
function scalar(r: Report, value: unknown, site: Site, templates: boolean): ScalarValue | undefined {
  if (typeof value === "number") {
    if (Number.isFinite(value)) return value === 0 ? 0 : value;
    r.add(site, "must be a finite number");
    return undefined;
  }
  const problem = typeof value === "string" ? anyText(value) : "must be a string or a number";
  const templateError = problem === null && templates ? templateProblem(value as string) : null;
  if (problem !== null || templateError !== null) {
    r.add(site, (problem ?? templateError) as string);
    return undefined;
  }
  return value as string;
}

// ---- the document ----

/**
 * Validates and normalizes a model document: defaults filled in, absent optional fields omitted,
 * named objects sorted by name. Never throws on bad input.
 */
export function parseModel(input: unknown): ModelResult {
  const r = new Report();
  const o = record(r, input, rootSite, topKeys);
  if (o === undefined) return { ok: false, problems: r.problems() };
  take(r, o, rootSite, "apiVersion", exactly(modelApiVersion), true);
  const connectedServer = has(o, "connectedServer") && o.connectedServer !== null ? parseServer(r, o.connectedServer, at(rootSite, "connectedServer")) : null;
  const policies = required(r, o, rootSite, "policies", (v, s) => parsePolicies(r, v, s));
  const packages = required(r, o, rootSite, "packages", (v, s) => parsePackages(r, v, s, declaredNames(o.policies, configLimits.policiesMax)));
  const aspects = required(r, o, rootSite, "aspects", (v, s) => parseAspects(r, v, s, declaredNames(o.packages, configLimits.packagesMax)));
  const templates = required(r, o, rootSite, "templates", (v, s) => parseTemplates(r, v, s, declaredNames(o.aspects, configLimits.aspectsMax)));
  if (r.count > 0) return { ok: false, problems: r.problems() };
  assert(connectedServer !== undefined && policies && packages && aspects && templates, "no problems means every part parsed");
  const model = canonicalModel({ connectedServer, policies, packages, aspects, templates });
  const bytes = Buffer.byteLength(JSON.stringify(modelDocument(model), null, 2)) + 1;
  if (bytes > configLimits.documentBytesMax) {
    r.add(rootSite, `the model takes ${bytes} bytes as JSON; at most ${configLimits.documentBytesMax}`);
    return { ok: false, problems: r.problems() };
  }
  return { ok: true, model };
}

/** Names a list declares (any string `name`); null when the list is malformed, so references are not checked against it. */
function declaredNames(value: unknown, max: number): ReadonlySet<string> | null {
  if (!Array.isArray(value) || value.length > max) return null;
  const names = new Set<string>();
  for (const entry of value) if (isPlainObject(entry) && typeof entry.name === "string") names.add(entry.name);
  return names;
}

function parseServer(r: Report, value: unknown, site: Site): ConnectedServer | undefined {
  const o = record(r, value, site, serverKeys);
  if (o === undefined) return undefined;
  const s = named(site, "connected server", o.name);
  const before = r.count;
  const name = take<string>(r, o, s, "name", checkName, true);
  const description = take<string>(r, o, s, "description", checkDescription, false);
  const ids = new Map<string, number>();
  const fqdns = new Map<string, number>();
  const nodes = required(r, o, s, "nodes", (v, ls) => list(r, v, ls, { min: 1, max: configLimits.nodesMax }, (n, ns, i) => parseNode(r, n, ns, { ids, fqdns, position: i })));
  if (r.count !== before) return undefined;
  return { name: name as string, ...(description === undefined ? {} : { description }), nodes: nodes as ServerNode[] };
}

function parseNode(r: Report, value: unknown, site: Site, seen: { ids: Map<string, number>; fqdns: Map<string, number>; position: number }): ServerNode | undefined {
  const o = record(r, value, site, nodeKeys);
  if (o === undefined) return undefined;
  const s = named(site, "node", o.id);
  const id = take<string>(r, o, s, "id", (v) => (checkName(v) === null ? null : "must be a node id: 1-63 characters of letters, digits, '.', '_' or '-'"), true);
  const fqdn = take<string>(r, o, s, "fqdn", (v) => (isAddress(v) ? null : "must be host:port (a DNS name, IPv4 or [IPv6] address, and a port 1-65535)"), true);
  const listPath = "connectedServer.nodes";
  if (id !== undefined) unique(r, seen.ids, id, at(s, "id"), { what: "node id", list: listPath, position: seen.position });
  // Host names are case-insensitive: two spellings of one host are one node.
  if (fqdn !== undefined) unique(r, seen.fqdns, fqdn.toLowerCase(), at(s, "fqdn"), { what: "fqdn", list: listPath, position: seen.position, shown: fqdn });
  return id === undefined || fqdn === undefined ? undefined : { id, fqdn };
}

// ---- policies ----

interface PolicyScope {
  readonly names: Map<string, number>;
  /** "type path" → position of the listener that took it. */
  readonly listenerPaths: Map<string, number>;
}

function parsePolicies(r: Report, value: unknown, site: Site): Policy[] | undefined {
  const scope: PolicyScope = { names: new Map(), listenerPaths: new Map() };
  return list(r, value, site, { min: 0, max: configLimits.policiesMax }, (v, s, i) => parsePolicy(r, v, s, scope, i));
}

function parsePolicy(r: Report, value: unknown, site: Site, scope: PolicyScope, position: number): Policy | undefined {
  const o = record(r, value, site, policyKeys);
  if (o === undefined) return undefined;
  const s = named(site, "policy", o.name);
  const before = r.count;
  const name = take<string>(r, o, s, "name", checkName, true);
  if (name !== undefined) unique(r, scope.names, name, at(s, "name"), { what: "policy name", list: "policies", position });
  const description = take<string>(r, o, s, "description", checkDescription, false);
  const type = take<PolicyType>(r, o, s, "type", oneOf(policyTypes), true);
  const source = parseSource(r, o, s, { type, scope, position });
  const inputFormat = take<string>(r, o, s, "inputFormat", oneOf(inputFormats), true);
  let mapping: Mapping | undefined;
  if (has(o, "mapping") && inputFormat === "xml") r.add(at(s, "mapping"), "only applies to inputFormat json (xml input is not mapped)");
  else if (has(o, "mapping")) mapping = parseMapping(r, o.mapping, at(s, "mapping"));
  const defaults = has(o, "defaults") ? fieldMap(r, o.defaults, at(s, "defaults"), 0, (v, vs) => scalar(r, v, vs, false)) : {};
  const rules = has(o, "rules") ? parseRules(r, o.rules, at(s, "rules")) : [];
  const unmatched = take<string>(r, o, s, "unmatched", oneOf(unmatchedActions), false) ?? "ignore";
  if (r.count !== before) return undefined;
  const common = { name, ...(description === undefined ? {} : { description }), type, ...source, inputFormat, ...(mapping === undefined ? {} : { mapping }) };
  return { ...common, defaults, rules, unmatched } as unknown as Policy;
}

function isListenerType(type: PolicyType): type is ListenerPolicy["type"] {
  return (listenerTypes as readonly string[]).includes(type);
}

/** The type-specific fields: `path` for listeners; `url`, `intervalSec`, `timeoutSec` for pulls. */
function parseSource(r: Report, o: Rec, s: Site, context: { type: PolicyType | undefined; scope: PolicyScope; position: number }): Record<string, unknown> {
  const { type } = context;
  // With no valid type, present fields are still checked on their own; nothing is required or out of place.
  const kind = type === undefined ? undefined : isListenerType(type) ? "listener" : "pull";
  const misplaced = (key: string): void => {
    if (has(o, key)) r.add(at(s, key), `does not belong to type ${type} (only ${kind === "listener" ? "pull" : "listener"} policies have ${key})`);
  };
  if (kind === "pull") {
    misplaced("path");
    return parsePullFields(r, o, s, true);
  }
  const path = take<string>(r, o, s, "path", checkListenerPath, kind === "listener");
  if (path !== undefined && type !== undefined) {
    // Two listeners of one signal on one path would each claim every request sent there.
    const previous = context.scope.listenerPaths.get(`${type} ${path}`);
    if (previous === undefined) context.scope.listenerPaths.set(`${type} ${path}`, context.position);
    else r.add(at(s, "path"), `another ${type} (policies[${previous}]) already listens on path '${short(path)}'`);
  }
  if (kind === "listener") pullOnlyKeys.forEach(misplaced);
  else parsePullFields(r, o, s, false);
  return { path };
}

function parsePullFields(r: Report, o: Rec, s: Site, required: boolean): Record<string, unknown> {
  const url = take<string>(r, o, s, "url", checkHttpUrl, required);
  const intervalSec = take<number>(r, o, s, "intervalSec", integerIn(1, configLimits.pullIntervalSecMax), required);
  const timeoutSec = take<number>(r, o, s, "timeoutSec", integerIn(1, configLimits.pullTimeoutSecMax), false);
  const timeout = has(o, "timeoutSec") ? timeoutSec : configLimits.pullTimeoutSecDefault;
  if (intervalSec !== undefined && timeout !== undefined && timeout > intervalSec) {
    // Polls of one policy must not overlap: a request has to end before the next one starts.
    const problem = has(o, "timeoutSec")
      ? `must be at most intervalSec (${intervalSec})`
      : `the default of ${timeout} exceeds intervalSec (${intervalSec}); set timeoutSec to at most ${intervalSec}`;
    r.add(at(s, "timeoutSec"), problem);
  }
  return { url, intervalSec, timeoutSec: timeout };
}

function parseMapping(r: Report, value: unknown, site: Site): Mapping | undefined {
  const o = record(r, value, site, mappingKeys);
  if (o === undefined) return undefined;
  const before = r.count;
  const each = take<string>(r, o, site, "each", checkFieldPath, false);
  const fields = required(r, o, site, "fields", (v, fs) => fieldMap(r, v, fs, 1, (f, s) => fieldSource(r, f, s)));
  if (r.count !== before || fields === undefined) return undefined;
  return { ...(each === undefined ? {} : { each }), fields };
}

function fieldSource(r: Report, value: unknown, site: Site): FieldSource | undefined {
  if (isPlainObject(value)) {
    const o = record(r, value, site, ["const"]);
    if (o === undefined) return undefined;
    if (!has(o, "const")) return void r.add(at(site, "const"), "is required");
    const constant = scalar(r, o.const, at(site, "const"), false);
    return constant === undefined ? undefined : { const: constant };
  }
  const text = anyText(value) === null ? (value as string) : undefined;
  const problem =
    text === undefined
      ? "must be a dotted path (labels.instance), a template with ${dotted.path} placeholders, or { const: value }"
      : text.includes("${")
        ? templateProblem(text)
        : fieldPathProblem(text) === null
          ? null
          : "must be a dotted path (labels.instance), a template with ${dotted.path} placeholders, or { const: value }";
  if (problem !== null) r.add(site, problem);
  return problem === null ? text : undefined;
}

function parseRules(r: Report, value: unknown, site: Site): Rule[] | undefined {
  const names = new Map<string, number>();
  return list(r, value, site, { min: 0, max: configLimits.rulesPerPolicyMax }, (v, s, i) => {
    const o = record(r, v, s, ruleKeys);
    if (o === undefined) return undefined;
    const rs = named(s, "rule", o.name);
    const before = r.count;
    const name = take<string>(r, o, rs, "name", checkName, true);
    if (name !== undefined) unique(r, names, name, at(rs, "name"), { what: "rule name", list: site.path, position: i });
    const condition = has(o, "if") ? parseCondition(r, o.if, at(rs, "if"), 1) : undefined;
    const action = take<string>(r, o, rs, "action", oneOf(ruleActions), true);
    const set = has(o, "set") ? fieldMap(r, o.set, at(rs, "set"), 0, (sv, ss) => scalar(r, sv, ss, true)) : undefined;
    if (r.count !== before) return undefined;
    return { name, ...(condition === undefined ? {} : { if: condition }), action, ...(set === undefined ? {} : { set }) } as Rule;
  });
}

function parseCondition(r: Report, value: unknown, site: Site, depth: number): Condition | undefined {
  if (depth > configLimits.conditionDepthMax) {
    r.add(site, `conditions nest deeper than ${configLimits.conditionDepthMax} levels`);
    return undefined;
  }
  const o = record(r, value, site, conditionKeys);
  if (o === undefined) return undefined;
  const operators = [...fieldOperators, ...combinators].filter((key) => has(o, key));
  const [operator] = operators;
  if (operator === undefined || operators.length > 1) {
    const found = operators.length === 0 ? "none" : operators.join(", ");
    r.add(site, `needs exactly one operator of ${[...fieldOperators, ...combinators].join(", ")} (found ${found})`);
    return undefined;
  }
  if (operator === "not") {
    if (has(o, "field")) r.add(at(site, "field"), "does not belong to a 'not' condition");
    const inner = parseCondition(r, o.not, at(site, "not"), depth + 1);
    return inner === undefined || has(o, "field") ? undefined : { not: inner };
  }
  if (operator === "and" || operator === "or") {
    if (has(o, "field")) r.add(at(site, "field"), `does not belong to an '${operator}' condition`);
    const bounds = { min: 1, max: configLimits.conditionItemsMax };
    const before = r.count;
    const items = list(r, o[operator], at(site, operator), bounds, (v, s) => parseCondition(r, v, s, depth + 1));
    return r.count !== before || items === undefined ? undefined : ({ [operator]: items } as unknown as Condition);
  }
  const field = take<string>(r, o, site, "field", checkFieldPath, true);
  const operand = take<unknown>(r, o, site, operator, operandCheck(operator), true);
  if (field === undefined || operand === undefined) return undefined;
  return { field, [operator]: typeof operand === "number" && operand === 0 ? 0 : operand } as Condition;
}

function operandCheck(operator: FieldOperator): Check {
  switch (operator) {
    case "equals":
      return (v) => (typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v)) ? null : anyText(v) === null ? null : "must be a string, a finite number or a boolean");
    case "regex":
      return (v) => textCheck(configLimits.regexCharsMax)(v) ?? regexProblem(v as string);
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      return (v) => (typeof v === "number" && Number.isFinite(v) ? null : "must be a finite number");
    case "exists":
      return (v) => (typeof v === "boolean" ? null : "must be true or false");
  }
}

function regexProblem(source: string): string | null {
  try {
    new RegExp(source);
    return null;
  } catch (error) {
    return `does not compile: ${(error as Error).message}`;
  }
}

// ---- packages, aspects, templates ----

/**
 * A list of references: names that must exist in `known` (unless that list is itself malformed),
 * each at most once. `claim` sees each valid reference.
 */
function references(r: Report, value: unknown, site: Site, target: { kind: string; known: ReadonlySet<string> | null; claim?: (name: string, s: Site) => void }): string[] | undefined {
  const seen = new Map<string, number>();
  const before = r.count;
  const names = list(r, value, site, { min: 1, max: configLimits.referencesMax }, (v, s, i) => {
    if (typeof v !== "string") return void r.add(s, `must be a ${target.kind} name (got ${describe(v)})`);
    if (seen.has(v)) return void r.add(s, `lists ${target.kind} '${short(v)}' twice (also at ${site.path}[${seen.get(v)}])`);
    seen.set(v, i);
    if (target.known !== null && !target.known.has(v)) return void r.add(s, `${target.kind} '${short(v)}' does not exist`);
    target.claim?.(v, s);
    return v;
  });
  return r.count === before ? names : undefined;
}

function parsePackages(r: Report, value: unknown, site: Site, policyNames: ReadonlySet<string> | null): HaPackage[] | undefined {
  const names = new Map<string, number>();
  /** policy → the package (position, name) that took it first. */
  const owners = new Map<string, { position: number; name: string }>();
  return list(r, value, site, { min: 0, max: configLimits.packagesMax }, (v, s, position) => {
    const o = record(r, v, s, packageKeys);
    if (o === undefined) return undefined;
    const ps = named(s, "package", o.name);
    const before = r.count;
    const name = take<string>(r, o, ps, "name", checkName, true);
    if (name !== undefined) unique(r, names, name, at(ps, "name"), { what: "package name", list: "packages", position });
    const description = take<string>(r, o, ps, "description", checkDescription, false);
    const claim = (policy: string, rs: Site): void => {
      const owner = owners.get(policy);
      if (owner === undefined) owners.set(policy, { position, name: name ?? `packages[${position}]` });
      // It would run once for each package it is in.
      else r.add(rs, `policy '${short(policy)}' already belongs to package '${short(owner.name)}' (packages[${owner.position}]); a policy may be in one package only`);
    };
    const policies = required(r, o, ps, "policies", (pv, s) => references(r, pv, s, { kind: "policy", known: policyNames, claim }));
    const components = has(o, "components") ? parseComponents(r, o.components, at(ps, "components")) : [];
    const syncItems = has(o, "syncItems") ? parseSyncItems(r, o.syncItems, at(ps, "syncItems")) : [];
    const weight = take<number>(r, o, ps, "weight", integerIn(1, configLimits.packageWeightMax), false) ?? 1;
    const forward = has(o, "forward") ? parseForward(r, o.forward, at(ps, "forward")) : undefined;
    const outboxBytesMax = take<number>(r, o, ps, "outboxBytesMax", integerIn(outboxLimits.bytesPerPackageMin, outboxLimits.bytesPerPackageMax), false);
    if (r.count !== before) return undefined;
    return { name, ...(description === undefined ? {} : { description }), policies, components, syncItems, weight, ...(forward === undefined ? {} : { forward }), ...(outboxBytesMax === undefined ? {} : { outboxBytesMax }) } as HaPackage;
  });
}

/**
 * A package's forwarding target: `{ type: omi }`, `{ type: websocket }`, or a webhook with its URL,
 * optional extra headers and the name of the environment variable holding its Authorization value.
 */
function parseForward(r: Report, value: unknown, site: Site): PackageForward | undefined {
  if (!isPlainObject(value)) return void r.add(site, `must be an object like { type: omi } (got ${describe(value)})`);
  const before = r.count;
  const typeValid = oneOf(forwardTypes)(value.type) === null;
  const known = typeValid ? forwardKeys[value.type as ForwardType] : forwardKeysAll;
  for (const key of Object.keys(value)) {
    if (!(forwardKeysAll as readonly string[]).includes(key)) r.add(at(site, key), `unknown key '${short(key)}' (known: ${known.join(", ")})`);
    else if (!known.includes(key)) r.add(at(site, key), `does not belong to a forward of type ${String(value.type)} (only webhook has ${key})`);
  }
  const type = take<ForwardType>(r, value, site, "type", oneOf(forwardTypes), true);
  if (type !== "webhook") return r.count === before && type !== undefined ? { type } : undefined;
  const url = take<string>(r, value, site, "url", checkWebhookUrl, true);
  const headers = has(value, "headers") ? parseHeaders(r, value.headers, at(site, "headers")) : undefined;
  const envCheck: Check = (v) =>
    typeof v === "string" && v.length <= forwardTargetLimits.envNameCharsMax && envNamePattern.test(v)
      ? null
      : `must be an environment variable name (letters, digits and '_', not starting with a digit, at most ${forwardTargetLimits.envNameCharsMax} characters)`;
  const authorizationEnv = take<string>(r, value, site, "authorizationEnv", envCheck, false);
  if (r.count !== before || url === undefined) return undefined;
  return { type, url, ...(headers === undefined ? {} : { headers }), ...(authorizationEnv === undefined ? {} : { authorizationEnv }) };
}

const checkWebhookUrl: Check = (v) => {
  const problem = checkHttpUrl(v);
  if (problem !== null) return problem;
  const url = new URL(v as string);
  // The model is replicated to every node and exported in full: no secrets in it.
  return url.username === "" && url.password === "" ? null : "must not hold credentials (user:password@); put the Authorization value in the environment variable authorizationEnv names";
};

function parseHeaders(r: Report, value: unknown, site: Site): Record<string, string> | undefined {
  if (!isPlainObject(value)) return void r.add(site, `must be a map of header name to value (got ${describe(value)})`);
  const names = Object.keys(value);
  const max = forwardTargetLimits.webhookHeadersMax;
  if (names.length > max) r.add(site, `must have at most ${max} entries (got ${names.length})`);
  const before = r.count;
  /** lower-case name → the spelling seen first: HTTP header names ignore case. */
  const seen = new Map<string, string>();
  for (const name of names.slice(0, max)) {
    const s = at(site, name);
    const lower = name.toLowerCase();
    if (name.length > forwardTargetLimits.headerNameCharsMax || !headerNamePattern.test(name)) r.add(s, `header name '${short(name)}' must be 1-${forwardTargetLimits.headerNameCharsMax} characters of an HTTP token (letters, digits, and !#$%&'*+.^_\`|~-)`);
    else if (lower === "authorization" || lower === "proxy-authorization") r.add(s, `header '${name}' is a secret and must not be in the replicated model: name an environment variable in authorizationEnv`);
    else if (reservedHeaders.has(lower)) r.add(s, `header '${name}' is set by the sender and cannot be configured`);
    else if (seen.has(lower)) r.add(s, `duplicate header '${short(name)}' (also as '${short(seen.get(lower) as string)}'; header names ignore case)`);
    seen.set(lower, seen.get(lower) ?? name);
    const v = value[name];
    const valueOk = typeof v === "string" && v.length <= forwardTargetLimits.headerValueCharsMax && headerValuePattern.test(v);
    if (!valueOk) r.add(s, `header value must be a string of at most ${forwardTargetLimits.headerValueCharsMax} printable ASCII characters without leading or trailing blanks`);
  }
  if (r.count !== before) return undefined;
  // fromEntries defines own properties: a header named __proto__ could not touch the prototype.
  return Object.fromEntries(names.map((name) => [name, value[name] as string]));
}

function parseComponents(r: Report, value: unknown, site: Site): string[] | undefined {
  const seen = new Map<string, number>();
  return list(r, value, site, { min: 0, max: packageComponents.length }, (v, s, i) => {
    const problem = oneOf(packageComponents)(v);
    if (problem !== null) return void r.add(s, problem);
    unique(r, seen, v as string, s, { what: "component", list: site.path, position: i });
    return v as string;
  });
}

function parseSyncItems(r: Report, value: unknown, site: Site): SyncItem[] | undefined {
  const names = new Map<string, number>();
  return list(r, value, site, { min: 0, max: configLimits.syncItemsPerPackageMax }, (v, s, i) => {
    const o = record(r, v, s, syncItemKeys);
    if (o === undefined) return undefined;
    const ss = named(s, "sync item", o.name);
    const type = take<string>(r, o, ss, "type", oneOf(syncItemTypes), true);
    const name = take<string>(r, o, ss, "name", checkName, true);
    if (name !== undefined) unique(r, names, name, at(ss, "name"), { what: "sync item name", list: site.path, position: i });
    const url = take<string>(r, o, ss, "url", checkHttpUrl, true);
    return type === undefined || name === undefined || url === undefined ? undefined : ({ type, name, url } as SyncItem);
  });
}

function parseAspects(r: Report, value: unknown, site: Site, packageNames: ReadonlySet<string> | null): Aspect[] | undefined {
  return parseGroupings(r, value, site, { kind: "aspect", list: "aspects", keys: aspectKeys, max: configLimits.aspectsMax, ciType: aspectCiType, members: "packages", memberKind: "package", known: packageNames }) as
    | Aspect[]
    | undefined;
}

function parseTemplates(r: Report, value: unknown, site: Site, aspectNames: ReadonlySet<string> | null): ManagementTemplate[] | undefined {
  return parseGroupings(r, value, site, { kind: "template", list: "templates", keys: templateKeys, max: configLimits.templatesMax, ciType: templateCiType, members: "aspects", memberKind: "aspect", known: aspectNames }) as
    | ManagementTemplate[]
    | undefined;
}

/** Aspects and templates have one shape: a named set of references, for one fixed CI type. */
function parseGroupings(
  r: Report,
  value: unknown,
  site: Site,
  shape: {
    readonly kind: string;
    readonly list: string;
    readonly keys: readonly string[];
    readonly max: number;
    readonly ciType: string;
    readonly members: string;
    readonly memberKind: string;
    readonly known: ReadonlySet<string> | null;
  },
): object[] | undefined {
  const names = new Map<string, number>();
  return list(r, value, site, { min: 0, max: shape.max }, (v, s, position) => {
    const o = record(r, v, s, shape.keys);
    if (o === undefined) return undefined;
    const gs = named(s, shape.kind, o.name);
    const before = r.count;
    const name = take<string>(r, o, gs, "name", checkName, true);
    if (name !== undefined) unique(r, names, name, at(gs, "name"), { what: `${shape.kind} name`, list: shape.list, position });
    const description = take<string>(r, o, gs, "description", checkDescription, false);
    take(r, o, gs, "ciType", exactly(shape.ciType), true);
    const members = required(r, o, gs, shape.members, (mv, ms) => references(r, mv, ms, { kind: shape.memberKind, known: shape.known }));
    if (r.count !== before) return undefined;
    return { name, ...(description === undefined ? {} : { description }), ciType: shape.ciType, [shape.members]: members };
  });
}

// ---- canonical form ----

/**
 * The model in canonical form: every object rebuilt with its keys in document order, named
 * objects sorted by name (nodes by id), rules and reference lists in the user's order. Export
 * writes exactly this, so one model has one text.
 */
export function canonicalModel(model: ConfigModel): ConfigModel {
  const server = model.connectedServer;
  return {
    connectedServer: server === null ? null : { name: server.name, ...optionalDescription(server), nodes: sortedBy(server.nodes, (n) => n.id).map((n) => ({ id: n.id, fqdn: n.fqdn })) },
    policies: sortedBy(model.policies, (p) => p.name).map(canonicalPolicy),
    packages: sortedBy(model.packages, (p) => p.name).map((p) => ({
      name: p.name,
      ...optionalDescription(p),
      policies: [...p.policies],
      components: [...p.components],
      syncItems: sortedBy(p.syncItems, (i) => i.name).map((i) => ({ type: i.type, name: i.name, url: i.url })),
      weight: p.weight,
      ...(p.forward === undefined ? {} : { forward: canonicalForward(p.forward) }),
      ...(p.outboxBytesMax === undefined ? {} : { outboxBytesMax: p.outboxBytesMax }),
    })),
    aspects: sortedBy(model.aspects, (a) => a.name).map((a) => ({ name: a.name, ...optionalDescription(a), ciType: a.ciType, packages: [...a.packages] })),
    templates: sortedBy(model.templates, (t) => t.name).map((t) => ({ name: t.name, ...optionalDescription(t), ciType: t.ciType, aspects: [...t.aspects] })),
  };
}

/** The whole document as export writes it: apiVersion first, then the canonical model. */
export function modelDocument(model: ConfigModel): { readonly apiVersion: typeof modelApiVersion } & ConfigModel {
  return { apiVersion: modelApiVersion, ...canonicalModel(model) };
}

/** Headers keep the user's order, like every other map in the model. */
function canonicalForward(forward: PackageForward): PackageForward {
  switch (forward.type) {
    case "omi":
    case "websocket":
      return { type: forward.type };
    case "webhook":
      return {
        type: forward.type,
        url: forward.url,
        ...(forward.headers === undefined ? {} : { headers: Object.fromEntries(Object.entries(forward.headers)) }),
        ...(forward.authorizationEnv === undefined ? {} : { authorizationEnv: forward.authorizationEnv }),
      };
    default:
      return unreachable(forward);
  }
}

function optionalDescription(o: { readonly description?: string }): { description?: string } {
  return o.description === undefined ? {} : { description: o.description };
}

/** Code-unit order, not locale order: the same on every node. Keys are unique in a valid model. */
function sortedBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) assert(key(sorted[i - 1] as T) !== key(sorted[i] as T), () => `duplicate name '${key(sorted[i] as T)}' in a model`);
  return sorted;
}

function canonicalPolicy(p: Policy): Policy {
  const source = "path" in p ? { path: p.path } : { url: p.url, intervalSec: p.intervalSec, timeoutSec: p.timeoutSec };
  const mapping = p.mapping === undefined ? {} : { mapping: { ...(p.mapping.each === undefined ? {} : { each: p.mapping.each }), fields: canonicalFields(p.mapping.fields) } };
  return {
    name: p.name,
    ...optionalDescription(p),
    type: p.type,
    ...source,
    inputFormat: p.inputFormat,
    ...mapping,
    defaults: Object.fromEntries(Object.entries(p.defaults)),
    rules: p.rules.map((rule) => ({
      name: rule.name,
      ...(rule.if === undefined ? {} : { if: canonicalCondition(rule.if, 1) }),
      action: rule.action,
      ...(rule.set === undefined ? {} : { set: Object.fromEntries(Object.entries(rule.set)) }),
    })),
    unmatched: p.unmatched,
  } as Policy;
}

function canonicalFields(fields: Readonly<Record<string, FieldSource>>): Record<string, FieldSource> {
  return Object.fromEntries(Object.entries(fields).map(([key, source]) => [key, typeof source === "string" ? source : { const: source.const }]));
}

function canonicalCondition(c: Condition, depth: number): Condition {
  assert(depth <= configLimits.conditionDepthMax, "conditions nest within the limit");
  if ("and" in c) return { and: c.and.map((inner) => canonicalCondition(inner, depth + 1)) };
  if ("or" in c) return { or: c.or.map((inner) => canonicalCondition(inner, depth + 1)) };
  if ("not" in c) return { not: canonicalCondition(c.not, depth + 1) };
  const operator = fieldOperators.find((op) => op in c);
  assert(operator !== undefined, "a field condition has an operator");
  return { field: c.field, [operator]: (c as Record<string, unknown>)[operator] } as Condition;
}
