/**
 * @module `opsconn node`: load and validate the node config, start the node, and stop it cleanly on
 * SIGTERM/SIGINT within the shutdown grace period.
 */
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { ConfigError, parseConfigText, parseNodeConfig, type NodeConfig } from "../config/node-config.ts";
import { Logger } from "../log/logger.ts";
import { ConnectorNode } from "../node/connector-node.ts";
import { lifecycle, runtimeEnvironment } from "../constants.ts";
import { UsageError, basicAuthFlagHelp, parseBasicAuthFlag } from "./usage.ts";

export const nodeHelp = `Usage: opsconn node [--config FILE] [options]

Runs one connector node. Flags override the config file; the file (YAML or JSON) takes the same
keys as the flags in camelCase (nodeId, host, port, dataDir, logLevel, advertise, initialCluster as
a map, join, clusterSecret, tlsCertFile, tlsKeyFile, tlsCaFile) plus the Raft timing keys tickMs,
electionTicks, heartbeatTicks, snapshotEveryEntries and snapshotEveryBytes. The cluster secret may
also come from OPSCONN_CLUSTER_SECRET, which keeps it out of the process list.

Without --initial-cluster a node founds a group of its own. Founders all get the same
--initial-cluster; a node added later with 'opsconn cluster add' starts with --join and an
--initial-cluster naming members it can reach.

Options:
  -c, --config FILE      node config file (YAML or JSON)
      --node-id ID       this node's stable id              (default node-1)
      --host HOST        listen address                     (default 127.0.0.1)
      --port PORT        HTTP port, 0 picks a free one       (default 30005)
      --data-dir DIR     where the libSQL files live         (default ./data)
      --log-level LEVEL  debug | info | warn | error         (default info)
      --advertise H:P    address peers reach this node at   (default host:bound port)
      --initial-cluster ID=H:P,ID=H:P   founding voters (used once, on an empty data dir);
                         with --join: existing members to contact
      --join             start empty and wait to be added to an existing group
      --cluster-secret S shared secret for peer authentication (16+ bytes)
      --tls-cert FILE    PEM certificate: serve the API and peer links over TLS
      --tls-key FILE     PEM private key for --tls-cert
      --tls-ca FILE      CA that peers' certificates are checked against (default: system CAs)
      --api-token ROLE=TOKEN  an API token (role admin, ingest or read); repeatable.
                         Without any, the API is open. In a config file: apiTokens: [{token, role}]
${basicAuthFlagHelp}      --omi-url URL      OMi's base URL for forwarding events (in a config file: omiTarget: {url, user,
                         passwordEnv, caFile})
      --test-faults      enable test-only fault switches (POST /api/v1/test/partition)
  -h, --help             show this help
`;

/** Parses argv and files into a validated config; throws UsageError naming every problem. */
export function resolveNodeConfig(argv: readonly string[]): NodeConfig | "help" {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: "string", short: "c" },
      "node-id": { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      "data-dir": { type: "string" },
      "log-level": { type: "string" },
      advertise: { type: "string" },
      "initial-cluster": { type: "string" },
      join: { type: "boolean" },
      "cluster-secret": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-ca": { type: "string" },
      "api-token": { type: "string", multiple: true },
      "basic-auth": { type: "string", multiple: true },
      "test-faults": { type: "boolean" },
      "omi-url": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const fromFile = values.config === undefined ? undefined : readConfigFile(values.config);
  const flags: Record<string, unknown> = {};
  if (values["node-id"] !== undefined) flags["nodeId"] = values["node-id"];
  if (values.host !== undefined) flags["host"] = values.host;
  if (values.port !== undefined) flags["port"] = /^\d+$/.test(values.port) ? Number(values.port) : values.port;
  if (values["data-dir"] !== undefined) flags["dataDir"] = values["data-dir"];
  if (values["log-level"] !== undefined) flags["logLevel"] = values["log-level"];
  if (values.advertise !== undefined) flags["advertise"] = values.advertise;
  if (values["initial-cluster"] !== undefined) flags["initialCluster"] = parseClusterList(values["initial-cluster"]);
  if (values.join !== undefined) flags["join"] = values.join;
  if (values["tls-cert"] !== undefined) flags["tlsCertFile"] = values["tls-cert"];
  if (values["tls-key"] !== undefined) flags["tlsKeyFile"] = values["tls-key"];
  if (values["tls-ca"] !== undefined) flags["tlsCaFile"] = values["tls-ca"];
  if (values["api-token"] !== undefined) flags["apiTokens"] = values["api-token"].map(parseTokenFlag);
  if (values["basic-auth"] !== undefined) flags["basicAuth"] = values["basic-auth"].map(parseBasicAuthFlag);
  if (values["test-faults"] !== undefined) flags["testFaults"] = values["test-faults"];
  if (values["omi-url"] !== undefined) flags["omiTarget"] = { url: values["omi-url"] };
  const secret = values["cluster-secret"] ?? process.env["OPSCONN_CLUSTER_SECRET"];
  if (secret !== undefined) flags["clusterSecret"] = secret;
  const result = parseNodeConfig([fromFile, flags]);
  if (!result.ok) throw new UsageError(`invalid node config: ${result.problems.join("; ")}`);
  return result.config;
}

/** "admin=s3cret..." → { role, token }; the role and token are checked by validation. */
function parseTokenFlag(flag: string): { role: string; token: string } {
  const at = flag.indexOf("=");
  if (at <= 0) throw new UsageError(`--api-token: '${flag.slice(0, 12)}…' is not ROLE=TOKEN`);
  return { role: flag.slice(0, at), token: flag.slice(at + 1) };
}

/** "a=h:1,b=h:2" → { a: "h:1", b: "h:2" }; malformed parts are left for validation to name. */
function parseClusterList(list: string): Record<string, string> {
  const members: Record<string, string> = {};
  for (const part of list.split(",")) {
    const at = part.indexOf("=");
    if (at <= 0) throw new UsageError(`--initial-cluster: '${part}' is not ID=HOST:PORT`);
    members[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return members;
}

function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return parseConfigText(text, path);
  } catch (error) {
    throw new UsageError((error as ConfigError).message);
  }
}

export async function runNode(argv: readonly string[]): Promise<number> {
  const config = resolveNodeConfig(argv);
  if (config === "help") {
    process.stdout.write(nodeHelp);
    return 0;
  }
  const log = new Logger({ node: config.nodeId, level: config.logLevel });
  // Read by the allocator at process start only, so all a running node can do is say so.
  for (const [name, recommended] of Object.entries(runtimeEnvironment)) {
    if (process.env[name] !== recommended) log.info("runtime setting not as recommended (README, Running a node)", { name, recommended, actual: process.env[name] ?? null });
  }
  const node = new ConnectorNode(config, log);
  try {
    await node.start();
  } catch (error) {
    await node.stop();
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  await waitForSignal(log);
  const forced = setTimeout(() => {
    log.error("shutdown exceeded grace period; exiting", { graceMs: lifecycle.shutdownGraceMs });
    process.exit(1);
  }, lifecycle.shutdownGraceMs);
  await node.stop();
  clearTimeout(forced);
  return 0;
}

function waitForSignal(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const handle = (signal: NodeJS.Signals) => {
      log.info("shutting down", { signal });
      process.off("SIGTERM", handle);
      process.off("SIGINT", handle);
      resolve();
    };
    process.on("SIGTERM", handle);
    process.on("SIGINT", handle);
  });
}
