/**
 * @module A node's own configuration (not the replicated cluster model): identity, listen address,
 * data directory, logging, how it founds or joins its group, who may call its API, and Raft timing.
 * Parsing is pure and collects every problem with the key it concerns; the I/O is kept apart and
 * done at start: the data-directory check (`ensureDataDir`), the TLS files (`readTls`) and the
 * basic-auth passwords, read from the environment variables the config names (`readBasicAuth`).
 */
import { mkdirSync, accessSync, writeFileSync, unlinkSync, readFileSync, constants as fsConstants } from "node:fs";
import { resolve, join } from "node:path";
import { basicAuthLimits, defaultHttpPort, raftTiming } from "../constants.ts";
import { logLevels, type LogLevel } from "../log/logger.ts";
import type { ApiToken, BasicAuthUser, BasicCredential } from "../http/middleware/auth.ts";
import type { Policy } from "./model/types.ts";
import { parseModel } from "./model/parse-model.ts";
import { listenerTypes, modelApiVersion } from "./model/types.ts";
import { assert } from "../assert.ts";

export interface NodeConfig {
  /** Stable identity of this node in the group (letters, digits, '-', '_', '.'). */
  readonly nodeId: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  /** "host:port" the other nodes reach this one at; null: host and the bound port. */
  readonly advertise: string | null;
  /**
   * node id → "host:port" (etcd's --initial-cluster). Without `join`: the founding voters, used once
   * when this node's log is empty; null means a group of this node alone. With `join`: members of
   * the existing group to reach until the replicated membership arrives.
   */
  readonly initialCluster: Readonly<Record<string, string>> | null;
  /** Start empty and wait to be added by the group (`opsconn cluster add`), never bootstrap. */
  readonly join: boolean;
  /** Shared secret peers prove with a challenge-response; required in a group of more than one. */
  readonly clusterSecret: string | null;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotEveryEntries: number;
  readonly snapshotEveryBytes: number;
  /**
   * TLS for the API and the peer links (they share one port): PEM certificate and key files. Peers
   * are verified against `tlsCaFile`, or the system's CAs when it is null.
   */
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  readonly tlsCaFile: string | null;
  /** API tokens and their roles (http/middleware/auth.ts); empty: the API is open. */
  readonly apiTokens: readonly ApiToken[];
  /**
   * Basic-auth users for existing integrations that cannot send a Bearer token: the same roles, on
   * the event listener only unless `scope: all`. `passwordEnv` names the environment variable the
   * password is read from at start (`readBasicAuth`); a password is never written in the config.
   */
  readonly basicAuth: readonly BasicAuthUser[];
  /**
   * Local, non-HA policies: they run on this node only, always, and never fail over (policies in an
   * HA package run on the package's holder). Same schema as the model's policies; pull policies only
   * (a listener's events go into an HA package's replicated outbox, so listeners live in packages).
   */
  readonly localPolicies: readonly Policy[];
  /**
   * Where this node forwards events when it holds a package (every node needs it: any may take
   * over). `passwordEnv` names the environment variable holding the password.
   */
  readonly omiTarget: { readonly url: string; readonly user?: string; readonly passwordEnv?: string; readonly caFile?: string } | null;
  /** Test-only fault switches (POST /api/v1/test/partition); never in production. */
  readonly testFaults: boolean;
}

export const defaultNodeConfig: NodeConfig = {
  nodeId: "node-1",
  host: "127.0.0.1",
  port: defaultHttpPort,
  dataDir: "./data",
  logLevel: "info",
  advertise: null,
  initialCluster: null,
  join: false,
  clusterSecret: null,
  ...raftTiming,
  tlsCertFile: null,
  tlsKeyFile: null,
  tlsCaFile: null,
  apiTokens: [],
  basicAuth: [],
  localPolicies: [],
  omiTarget: null,
  testFaults: false,
};

export type ConfigResult = { readonly ok: true; readonly config: NodeConfig } | { readonly ok: false; readonly problems: readonly string[] };

type Check = (value: unknown) => string | null;

const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** host:port with a DNS name, IPv4 address or bracketed IPv6 address. */
const addressPattern = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/;
const clusterSecretBytesMin = 16;
const apiTokenCharsMin = 16;

/** A sane user name: no ':' (RFC 7617 §2: it ends the user-id), no spaces or control characters. */
const basicUserPattern = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,${basicAuthLimits.userCharsMax - 1}}$`);
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Keys whose values may hold secrets: their problems are reported without the value. */
const secretKeys = new Set(["clusterSecret", "apiTokens", "basicAuth"]);

/** Environment variables by name (process.env, or a test's own). */
export type Env = Readonly<Record<string, string | undefined>>;

export function isAddress(value: unknown): value is string {
  const match = typeof value === "string" ? addressPattern.exec(value) : null;
  return match !== null && Number(match[2]) >= 1 && Number(match[2]) <= 65535;
}

const integerIn = (min: number, max: number): Check => (v) => (typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? null : `must be an integer from ${min} to ${max}`);

const checks: Record<keyof NodeConfig, Check> = {
  nodeId: (v) => (typeof v === "string" && nodeIdPattern.test(v) ? null : "must be 1-63 characters of letters, digits, '.', '_' or '-'"),
  host: (v) => (typeof v === "string" && v.length > 0 && v.length <= 253 ? null : "must be a host name or IP address"),
  port: (v) => (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 65535 ? null : "must be an integer from 0 (any free port) to 65535"),
  dataDir: (v) => (typeof v === "string" && v.length > 0 ? null : "must be a non-empty path"),
  logLevel: (v) => (typeof v === "string" && (logLevels as string[]).includes(v) ? null : `must be one of ${logLevels.join(", ")}`),
  advertise: (v) => (v === null || isAddress(v) ? null : "must be host:port"),
  initialCluster: (v) => {
    if (v === null) return null;
    if (typeof v !== "object" || Array.isArray(v) || Object.keys(v).length === 0) return "must map node ids to host:port";
    for (const [id, address] of Object.entries(v)) {
      if (!nodeIdPattern.test(id)) return `node id '${id}' is not valid`;
      if (!isAddress(address)) return `address of '${id}' must be host:port`;
    }
    return null;
  },
  join: (v) => (typeof v === "boolean" ? null : "must be true or false"),
  clusterSecret: (v) => (v === null || (typeof v === "string" && new TextEncoder().encode(v).length >= clusterSecretBytesMin) ? null : `must be at least ${clusterSecretBytesMin} bytes`),
  tickMs: integerIn(1, 10_000),
  electionTicks: integerIn(2, 1000),
  heartbeatTicks: integerIn(1, 999),
  snapshotEveryEntries: integerIn(1, 100_000_000),
  snapshotEveryBytes: integerIn(1024, 2 ** 40),
  tlsCertFile: (v) => (v === null || (typeof v === "string" && v.length > 0) ? null : "must be a file path"),
  tlsKeyFile: (v) => (v === null || (typeof v === "string" && v.length > 0) ? null : "must be a file path"),
  tlsCaFile: (v) => (v === null || (typeof v === "string" && v.length > 0) ? null : "must be a file path"),
  apiTokens: (v) => {
    if (!Array.isArray(v)) return "must be a list of { token, role }";
    for (const [i, entry] of v.entries()) {
      const { token, role, ...rest } = (entry ?? {}) as Record<string, unknown>;
      if (Object.keys(rest).length > 0) return `[${i}]: unknown key ${Object.keys(rest)[0]} (known: token, role)`;
      if (typeof token !== "string" || token.length < apiTokenCharsMin || /\s/.test(token)) return `[${i}].token: must be at least ${apiTokenCharsMin} characters without spaces`;
      if (role !== "admin" && role !== "ingest" && role !== "read") return `[${i}].role: must be admin, ingest or read`;
    }
    if (new Set(v.map((e: { token: string }) => e.token)).size !== v.length) return "a token is listed twice";
    return null;
  },
  basicAuth: (v) => {
    if (!Array.isArray(v)) return "must be a list of { user, passwordEnv, role, scope? }";
    if (v.length > basicAuthLimits.usersMax) return `must list at most ${basicAuthLimits.usersMax} users`;
    for (const [i, entry] of v.entries()) {
      const problem = basicAuthUserProblem(entry);
      if (problem !== null) return `[${i}]${problem}`;
    }
    const users = v.map((e: { user: string }) => e.user);
    const twice = users.find((user, i) => users.indexOf(user) !== i);
    return twice === undefined ? null : `user '${twice}' is listed twice`;
  },
  testFaults: (v) => (typeof v === "boolean" ? null : "must be true or false"),
  omiTarget: (v) => {
    if (v === null) return null;
    if (typeof v !== "object" || Array.isArray(v)) return "must be { url, user?, passwordEnv?, caFile? }";
    const { url, user, passwordEnv, caFile, ...rest } = v as Record<string, unknown>;
    if (Object.keys(rest).length > 0) return `unknown key ${Object.keys(rest)[0]} (known: url, user, passwordEnv, caFile)`;
    if (typeof url !== "string" || !/^https?:\/\/[^/]+/.test(url)) return "url: must be an http(s) URL (OMi's base, e.g. https://omi.example.com)";
    for (const [key, value] of Object.entries({ user, passwordEnv, caFile })) if (value !== undefined && (typeof value !== "string" || value.length === 0)) return `${key}: must be a non-empty string`;
    return null;
  },
  localPolicies: (v) => {
    if (!Array.isArray(v)) return "must be a list of policies";
    const parsed = parseModel({ apiVersion: modelApiVersion, policies: v, packages: [], aspects: [], templates: [] });
    return parsed.ok ? null : parsed.problems.map((p) => `${p.path}: ${p.message}`).join("; ");
  },
};

/** One `basicAuth` entry's first problem, prefixed by the key it concerns; null when valid. */
function basicAuthUserProblem(entry: unknown): string | null {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return ": must be { user, passwordEnv, role, scope? }";
  const { user, passwordEnv, role, scope, ...rest } = entry as Record<string, unknown>;
  if ("password" in rest) return ".password: not accepted in the config; put the password in an environment variable and name it in passwordEnv";
  if (Object.keys(rest).length > 0) return `: unknown key ${Object.keys(rest)[0]} (known: user, passwordEnv, role, scope)`;
  if (typeof user !== "string" || !basicUserPattern.test(user)) {
    return `.user: must be 1-${basicAuthLimits.userCharsMax} characters of letters, digits, '.', '_', '@' or '-' (no ':')`;
  }
  if (typeof passwordEnv !== "string" || !envNamePattern.test(passwordEnv)) return ".passwordEnv: must name an environment variable (letters, digits and '_', not starting with a digit)";
  if (role !== "admin" && role !== "ingest" && role !== "read") return ".role: must be admin, ingest or read";
  if (scope !== undefined && scope !== "events" && scope !== "all") return ".scope: must be events (the event listener only, the default) or all";
  return null;
}

/** Rules that span keys; only run once every key is valid on its own. */
function crossChecks(config: NodeConfig): string[] {
  const problems: string[] = [];
  const founders = config.initialCluster === null ? [] : Object.keys(config.initialCluster);
  if (config.join && config.initialCluster === null) problems.push("initialCluster: a joining node needs the addresses of existing members");
  if (!config.join && config.initialCluster !== null && !founders.includes(config.nodeId)) {
    problems.push(`initialCluster: does not list this node '${config.nodeId}' (set join: true to join an existing group instead)`);
  }
  if ((config.join || founders.length > 1) && config.clusterSecret === null) problems.push("clusterSecret: required for a group of more than one node");
  if (config.heartbeatTicks >= config.electionTicks) problems.push("heartbeatTicks: must be below electionTicks, or followers time out between heartbeats");
  if ((config.tlsCertFile === null) !== (config.tlsKeyFile === null)) problems.push("tlsCertFile: TLS needs both tlsCertFile and tlsKeyFile");
  if (config.tlsCaFile !== null && config.tlsCertFile === null) problems.push("tlsCaFile: only used with tlsCertFile and tlsKeyFile");
  // Refused rather than accepted and never served: a source pointed at its path would only get 404s.
  for (const policy of config.localPolicies) {
    if ((listenerTypes as readonly string[]).includes(policy.type)) {
      problems.push(`localPolicies: '${policy.name}' is of type ${policy.type}: listener policies run in an HA package (a local one would not be served); only pull policies run locally`);
    }
  }
  return problems;
}

/**
 * Merge defaults ← file ← flags, then validate. Unknown keys are errors, never ignored: a typo in a
 * config file must not silently fall back to a default.
 */
export function parseNodeConfig(layers: readonly unknown[]): ConfigResult {
  const problems: string[] = [];
  const merged: Record<string, unknown> = { ...defaultNodeConfig };
  for (const layer of layers) {
    if (layer === undefined) continue;
    if (typeof layer !== "object" || layer === null || Array.isArray(layer)) {
      problems.push("config: must be an object of key: value pairs");
      continue;
    }
    for (const [key, value] of Object.entries(layer)) {
      if (!(key in checks)) problems.push(`${key}: unknown key (known: ${Object.keys(checks).join(", ")})`);
      else merged[key] = value;
    }
  }
  for (const [key, check] of Object.entries(checks)) {
    const problem = check(merged[key]);
    if (problem !== null) problems.push(secretKeys.has(key) ? `${key}: ${problem}` : `${key}: ${problem} (got ${JSON.stringify(merged[key])})`);
  }
  if (problems.length > 0) return { ok: false, problems };
  const local = parseModel({ apiVersion: modelApiVersion, policies: merged["localPolicies"], packages: [], aspects: [], templates: [] });
  if (local.ok) merged["localPolicies"] = local.model.policies;
  const config = merged as unknown as NodeConfig;
  const crossProblems = crossChecks(config);
  if (crossProblems.length > 0) return { ok: false, problems: crossProblems };
  return { ok: true, config };
}

/** Parses a config file's text; YAML is a superset of JSON, so one parser serves both. */
export function parseConfigText(text: string, path: string): unknown {
  try {
    return Bun.YAML.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: not valid YAML or JSON: ${(error as Error).message}`);
  }
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Creates the data directory if needed and proves it writable, so a bad path fails at start. */
export function ensureDataDir(dataDir: string): string {
  const absolute = resolve(dataDir);
  try {
    mkdirSync(absolute, { recursive: true });
    accessSync(absolute, fsConstants.W_OK);
    const probe = join(absolute, `.write-probe-${process.pid}`);
    writeFileSync(probe, "");
    unlinkSync(probe);
  } catch (error) {
    throw new ConfigError(`dataDir: ${absolute} is not a writable directory (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return absolute;
}

/**
 * Reads each basic-auth user's password from the environment variable it names, once, at start,
 * so a missing or empty one fails then with the key it came from (every one is named at once).
 */
export function readBasicAuth(users: readonly BasicAuthUser[], env: Env): BasicCredential[] {
  assert(users.length <= basicAuthLimits.usersMax, "basicAuth is validated before it is read");
  const problems: string[] = [];
  const credentials: BasicCredential[] = [];
  for (const [i, { user, passwordEnv, role, scope }] of users.entries()) {
    const password = env[passwordEnv];
    if (password === undefined || password === "") problems.push(`basicAuth[${i}].passwordEnv: environment variable ${passwordEnv} (password of '${user}') is not set or empty`);
    else if (Buffer.byteLength(password) > basicAuthLimits.passwordBytesMax) problems.push(`basicAuth[${i}].passwordEnv: the password in ${passwordEnv} exceeds ${basicAuthLimits.passwordBytesMax} bytes`);
    else credentials.push({ user, password, role, scope: scope ?? "events" });
  }
  if (problems.length > 0) throw new ConfigError(problems.join("; "));
  assert(credentials.length === users.length, "every user has its password");
  return credentials;
}

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | null;
}

/** Reads the TLS files named in the config, so a bad path fails at start with the key it came from. */
export function readTls(config: NodeConfig): TlsMaterial | null {
  if (config.tlsCertFile === null || config.tlsKeyFile === null) return null;
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      throw new ConfigError(`${key}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  };
  return {
    cert: read("tlsCertFile", config.tlsCertFile),
    key: read("tlsKeyFile", config.tlsKeyFile),
    ca: config.tlsCaFile === null ? null : read("tlsCaFile", config.tlsCaFile),
  };
}
