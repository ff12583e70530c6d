/**
 * @module The configuration commands, through any node's HTTP API (admin token from --token or
 * OPSCONN_TOKEN): `opsconn config apply -f FILE`, `opsconn config get`, `opsconn deploy TEMPLATE`,
 * `opsconn rollback VERSION`. An invalid model prints every problem and exits 1.
 */
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { UsageError } from "./usage.ts";

const common = `Options:
  -n, --node URL     any node of the group (default http://127.0.0.1:30005)
  -t, --token TOKEN  an admin API token (default: $OPSCONN_TOKEN)
  -h, --help         show this help
`;

export const configHelp = `Usage: opsconn config <apply|get> [options]

  opsconn config apply -f FILE     replace the configuration model (YAML or JSON, by extension)
  opsconn config get [--format F]  print the model (F: yaml, the default, or json)

The model holds the connected server, policies, HA package policies, aspects and management
templates. Nothing runs until a template is deployed: 'opsconn deploy TEMPLATE'.

${common}`;

export const deployHelp = `Usage: opsconn deploy TEMPLATE [options]

Validates the model and deploys the management template to the connected server: a new version.

${common}`;

export const rollbackHelp = `Usage: opsconn rollback VERSION [options]

Deploys an earlier version's configuration again, as a new version (the draft is left as it is).

${common}`;

const commonOptions = {
  node: { type: "string", short: "n" },
  token: { type: "string", short: "t" },
  help: { type: "boolean", short: "h" },
} as const;

export async function runConfig(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...commonOptions, file: { type: "string", short: "f" }, format: { type: "string" } },
    strict: true,
    allowPositionals: true,
  });
  const [action, ...rest] = positionals;
  if (values.help || action === undefined) {
    process.stdout.write(configHelp);
    return values.help ? 0 : 2;
  }
  const api = apiOf(values);
  if (action === "apply" && rest.length === 0) {
    if (values.file === undefined) throw new UsageError("config apply: -f FILE is required");
    const text = readText(values.file);
    const type = /\.json$/i.test(values.file) ? "application/json" : "application/yaml";
    return call(api, "/api/v1/config", { method: "PUT", body: text, headers: { "content-type": type } });
  }
  if (action === "get" && rest.length === 0) {
    const format = values.format ?? "yaml";
    if (format !== "yaml" && format !== "json") throw new UsageError(`config get: --format must be yaml or json`);
    return call(api, `/api/v1/config?format=${format}`, { method: "GET" }, { raw: true });
  }
  throw new UsageError("config: expected 'apply -f FILE' or 'get' (try 'opsconn config --help')");
}

export async function runDeploy(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: commonOptions, strict: true, allowPositionals: true });
  if (values.help) return (process.stdout.write(deployHelp), 0);
  if (positionals.length !== 1) throw new UsageError("deploy: expected one TEMPLATE name (try 'opsconn deploy --help')");
  return call(apiOf(values), "/api/v1/config/deployments", { method: "POST", body: JSON.stringify({ template: positionals[0] }), headers: { "content-type": "application/json" } });
}

export async function runRollback(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: commonOptions, strict: true, allowPositionals: true });
  if (values.help) return (process.stdout.write(rollbackHelp), 0);
  const version = Number(positionals[0]);
  if (positionals.length !== 1 || !Number.isSafeInteger(version) || version < 1) throw new UsageError("rollback: expected one VERSION number (see 'GET /api/v1/config/deployments')");
  return call(apiOf(values), "/api/v1/config/rollback", { method: "POST", body: JSON.stringify({ version }), headers: { "content-type": "application/json" } });
}

interface Api {
  readonly base: string;
  readonly token: string | undefined;
}

function apiOf(values: { node?: string; token?: string }): Api {
  return { base: (values.node ?? "http://127.0.0.1:30005").replace(/\/+$/, ""), token: values.token ?? process.env["OPSCONN_TOKEN"] };
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

async function call(api: Api, path: string, init: RequestInit & { headers?: Record<string, string> }, options: { raw?: boolean } = {}): Promise<number> {
  const headers = { ...(init.headers ?? {}), ...(api.token === undefined ? {} : { authorization: `Bearer ${api.token}` }) };
  let response: Response;
  try {
    response = await fetch(`${api.base}${path}`, { ...init, headers, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new Error(`cannot reach ${api.base}: ${(error as Error).message}`);
  }
  const body = await response.text();
  if (!response.ok) {
    console.error(`opsconn: ${response.status} ${describeError(body)}`);
    return 1;
  }
  console.log(options.raw ? body.trimEnd() : JSON.stringify(JSON.parse(body), null, 2));
  return 0;
}

/** The error message and, for an invalid model, one line per problem. */
function describeError(body: string): string {
  try {
    const { error } = JSON.parse(body) as { error: { message: string; problems?: Array<{ path: string; message: string }> } };
    return [error.message, ...(error.problems ?? []).map((p) => `  ${p.path}: ${p.message}`)].join("\n");
  } catch {
    return body;
  }
}
