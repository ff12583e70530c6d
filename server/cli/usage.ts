/**
 * @module CLI conventions: `UsageError` means the user asked for something malformed (exit 2, one
 * clear line); anything else escaping a command is a runtime failure (exit 1). Also the help and
 * parser of `--basic-auth`, the node flag whose value names a secret without holding it.
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

/**
 * Help for `opsconn node --basic-auth`, to sit under --api-token in the node command's help. Only
 * the variable's name is on the command line: the process list and shell history never hold the
 * password.
 */
export const basicAuthFlagHelp = `      --basic-auth ROLE=USER:ENVVAR  a basic-auth user (role admin, ingest or read) for
                         integrations that cannot send a Bearer token; its password is read from
                         the environment variable ENVVAR at start; repeatable. Accepted on the event
                         listener (/bsmc/rest/...) only. In a config file: basicAuth: [{user,
                         passwordEnv, role, scope}], where scope: all opens every path to the user
`;

/** "ingest=nagios:NAGIOS_PASSWORD" → a `basicAuth` entry; its parts are checked by node config validation. */
export function parseBasicAuthFlag(flag: string): { role: string; user: string; passwordEnv: string } {
  const equals = flag.indexOf("=");
  const colon = flag.indexOf(":", equals + 1);
  // The flag is not echoed: a user who typed a password where ENVVAR goes must not see it in logs.
  if (equals <= 0 || colon < 0) throw new UsageError("--basic-auth: expected ROLE=USER:ENVVAR, e.g. ingest=nagios:NAGIOS_PASSWORD (the password goes in the environment variable)");
  return { role: flag.slice(0, equals), user: flag.slice(equals + 1, colon), passwordEnv: flag.slice(colon + 1) };
}
