/**
 * Local, non-HA policies: configured in one node's config file, they run on that node only, without
 * any deployment or lease, and status marks them as local.
 */
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunPath, cleanupAll, runCli, startNode, tempDir } from "../support/node-process.ts";
import { startPollSource, until } from "../support/ha-packages.ts";

afterAll(cleanupAll);

test("a local pull policy polls from its node alone, with no deployment, and is reported as local", async () => {
  const source = startPollSource();
  const dir = tempDir();
  const config = join(dir, "node.yaml");
  writeFileSync(
    config,
    `nodeId: solo\ndataDir: ${join(dir, "data")}\nlocalPolicies:\n  - name: lab-pull\n    type: metric-pull\n    url: http://127.0.0.1:${source.port}/metrics\n    intervalSec: 1\n    timeoutSec: 1\n    inputFormat: json\n`,
  );
  const node = await startNode([bunPath, "server/main.ts"], ["-c", config]);
  try {
    // The first poll comes as the policy starts, the second a second later.
    await until("two polls", 10_000, async () => (source.polls.length >= 2 ? true : null));
    expect(new Set(source.polls.map((p) => `${p.node}/${p.pkg}`))).toEqual(new Set(["solo/local"]));
    const status = (await (await fetch(`${node.url}/api/v1/status`)).json()) as { localPolicies: Array<{ name: string; scope: string }>; packages: unknown[] };
    expect(status.localPolicies.map((p) => [p.name, p.scope])).toEqual([["lab-pull", "local"]]);
    expect(status.packages).toEqual([]);
  } finally {
    node.proc.kill("SIGKILL");
    source.stop();
  }

  // A bad local policy is a configuration error at start, naming the problem.
  writeFileSync(config, `nodeId: solo\nlocalPolicies:\n  - name: lab-pull\n    type: metric-pull\n    url: ftp://x\n    intervalSec: 1\n    inputFormat: json\n`);
  const refused = await runCli([bunPath, "server/main.ts"], ["node", "-c", config]);
  expect(refused.exitCode).toBe(2);
  expect(refused.stderr).toContain("localPolicies");
}, 30_000);
