/**
 * @module A node's own configuration (not the replicated cluster model): identity, listen address,
 * data directory, logging. Parsing is pure and collects every problem with the key it concerns; the
 * data-directory check is the one piece of I/O, kept apart in `ensureDataDir`.
 */
import { mkdirSync, accessSync, writeFileSync, unlinkSync, constants as fsConstants } from "node:fs";
import { resolve, join } from "node:path";
import { defaultHttpPort } from "../constants.ts";
import { logLevels, type LogLevel } from "../log/logger.ts";

export interface NodeConfig {
  /** Stable identity of this node in the group (letters, digits, '-', '_', '.'). */
  readonly nodeId: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
}

export const defaultNodeConfig: NodeConfig = {
  nodeId: "node-1",
  host: "127.0.0.1",
  port: defaultHttpPort,
  dataDir: "./data",
  logLevel: "info",
};

export type ConfigResult = { readonly ok: true; readonly config: NodeConfig } | { readonly ok: false; readonly problems: readonly string[] };

type Check = (value: unknown) => string | null;

const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const checks: Record<keyof NodeConfig, Check> = {
  nodeId: (v) => (typeof v === "string" && nodeIdPattern.test(v) ? null : "must be 1-63 characters of letters, digits, '.', '_' or '-'"),
  host: (v) => (typeof v === "string" && v.length > 0 && v.length <= 253 ? null : "must be a host name or IP address"),
  port: (v) => (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 65535 ? null : "must be an integer from 0 (any free port) to 65535"),
  dataDir: (v) => (typeof v === "string" && v.length > 0 ? null : "must be a non-empty path"),
  logLevel: (v) => (typeof v === "string" && (logLevels as string[]).includes(v) ? null : `must be one of ${logLevels.join(", ")}`),
};

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
    if (problem !== null) problems.push(`${key}: ${problem} (got ${JSON.stringify(merged[key])})`);
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: merged as unknown as NodeConfig };
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
