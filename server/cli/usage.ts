/**
 * @module CLI conventions: `UsageError` means the user asked for something malformed (exit 2, one
 * clear line); anything else escaping a command is a runtime failure (exit 1).
 */

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const exitCodes = { ok: 0, failure: 1, usage: 2 } as const;

export const topHelp = `opsconn: high-availability operations connector (events, metrics, topology to OMi)

Usage:
  opsconn <command> [options]

Commands:
  node       run one connector node (from a config file and/or flags)
  cluster    list, add or remove the group's nodes (connected servers)
  config     apply or get the configuration model (policies, packages, aspects, templates)
  deploy     deploy a management template to the group (a new version)
  rollback   deploy an earlier version again
  omi-sim    run an OMi receiver simulator (event web service) for demos and tests
  version    print the version
  help       show this help, or 'opsconn help <command>'

Run 'opsconn <command> --help' for a command's options.
`;
