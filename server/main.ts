#!/usr/bin/env bun
/**
 * @module The `opsconn` command line. It only dispatches: each subcommand lives in server/cli/.
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
 */
import { runNode, nodeHelp } from "./cli/node-command.ts";
import { runCluster, clusterHelp } from "./cli/cluster-command.ts";
import { configHelp, deployHelp, rollbackHelp, runConfig, runDeploy, runRollback } from "./cli/config-command.ts";
import { omiSimHelp, runOmiSim } from "./cli/omi-sim-command.ts";
import { UsageError, exitCodes, topHelp } from "./cli/usage.ts";
import { version } from "./version.ts";

type Command = (argv: readonly string[]) => Promise<number>;

const commands: Record<string, { run: Command; help: string }> = {
  node: { run: runNode, help: nodeHelp },
  cluster: { run: runCluster, help: clusterHelp },
  config: { run: runConfig, help: configHelp },
  deploy: { run: runDeploy, help: deployHelp },
  rollback: { run: runRollback, help: rollbackHelp },
  "omi-sim": { run: runOmiSim, help: omiSimHelp },
  version: { run: async () => (console.log(`opsconn ${version} (bun ${Bun.version})`), 0), help: "Usage: opsconn version\n" },
};

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    const topic = name === "help" && rest[0] !== undefined ? commands[rest[0]] : undefined;
    process.stdout.write(topic?.help ?? topHelp);
    return exitCodes.ok;
  }
  if (name === "--version") return commands["version"]!.run([]);
  const command = commands[name];
  if (command === undefined) throw new UsageError(`unknown command '${name}' (try 'opsconn --help')`);
  return command.run(rest);
}

try {
  process.exitCode = await main(Bun.argv.slice(2));
} catch (error) {
  const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
  console.error(`opsconn: ${(error as Error).message}`);
  process.exitCode = usage ? exitCodes.usage : exitCodes.failure;
}
