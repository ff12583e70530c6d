/**
 * `opsconn config apply|get`, `opsconn deploy`, `opsconn rollback` against a real single-node group
 * with API tokens: the five OMi steps from the command line, an invalid file refused with every
 * problem, and the admin token required.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { bunPath, cleanupAll, runCli, startNode, tempDir, type RunningNode } from "../support/node-process.ts";

const cli = [bunPath, "server/main.ts"];
const admin = "admin-token-for-cli-tests";
const reader = "read-token-for-cli-tests";
let node: RunningNode;
let dir: string;

beforeAll(async () => {
  dir = tempDir();
  node = await startNode(cli, ["--node-id", "n1", "--data-dir", join(dir, "data"), "--api-token", `admin=${admin}`, "--api-token", `read=${reader}`]);
  // A lone node elects itself within an election timeout.
  for (let i = 0; i < 100; i++) {
    const status = (await (await fetch(`${node.url}/api/v1/status`, { headers: { authorization: `Bearer ${reader}` } })).json()) as { raft?: { role: string } };
    if (status.raft?.role === "leader") break;
    await Bun.sleep(50);
  }
});
afterAll(() => {
  node.proc.kill("SIGKILL");
  cleanupAll();
});

const model = (pollUrl: string) => `apiVersion: opsconn/v1
connectedServer:
  name: opsconn-ha
  nodes:
    - id: n1
      fqdn: ${new URL(node.url).host}
policies:
  - name: nagios-events
    type: event-listener
    path: nagios
    inputFormat: xml
    rules:
      - name: critical
        if: { field: severity, equals: critical }
        action: send
  - name: zabbix-pull
    type: event-pull
    url: ${pollUrl}
    intervalSec: 60
    inputFormat: json
packages:
  - name: nagios-ha
    policies: [nagios-events, zabbix-pull]
    components: [events]
aspects:
  - name: opsconn-ha
    ciType: Running Software
    packages: [nagios-ha]
templates:
  - name: opsconn-system
    ciType: Operations Connector System
    aspects: [opsconn-ha]
`;

const run = (args: string[], token = admin) => runCli(cli, [...args, "--node", node.url, "--token", token]);

describe("opsconn config / deploy / rollback", () => {
  test("apply, get (round trip), deploy, deploy again, rollback", async () => {
    const file = join(dir, "model.yaml");
    writeFileSync(file, model("http://127.0.0.1:9/zabbix"));
    const applied = await run(["config", "apply", "-f", file]);
    expect(applied.exitCode).toBe(0);
    const got = await run(["config", "get"]);
    expect(got.exitCode).toBe(0);
    // The export is canonical: applying it again and exporting gives the same text.
    writeFileSync(join(dir, "exported.yaml"), got.stdout);
    expect((await run(["config", "apply", "-f", join(dir, "exported.yaml")])).exitCode).toBe(0);
    expect((await run(["config", "get"])).stdout).toBe(got.stdout);

    const first = await run(["deploy", "opsconn-system"]);
    expect(first.exitCode).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ version: 1, template: "opsconn-system" });
    writeFileSync(file, model("http://127.0.0.1:9/zabbix-v2"));
    expect((await run(["config", "apply", "-f", file])).exitCode).toBe(0);
    expect(JSON.parse((await run(["deploy", "opsconn-system"])).stdout).version).toBe(2);
    const back = await run(["rollback", "1"]);
    expect(back.exitCode).toBe(0);
    expect(JSON.parse(back.stdout)).toEqual({ version: 3, rollbackOf: 1 });
    const history = (await (await fetch(`${node.url}/api/v1/config/deployments`, { headers: { authorization: `Bearer ${admin}` } })).json()) as {
      current: number;
      deployments: Array<{ version: number; kind: string }>;
    };
    expect(history.current).toBe(3);
    expect(history.deployments.map((d) => d.kind)).toEqual(["deploy", "deploy", "rollback"]);
    const deployed = (await (await fetch(`${node.url}/api/v1/config/deployments/3`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { model: { policies: Array<{ url?: string }> } };
    expect(deployed.model.policies.map((p) => p.url).filter(Boolean)).toEqual(["http://127.0.0.1:9/zabbix"]);
  }, 30_000);

  test("an invalid file prints every problem and changes nothing; an unknown template is refused", async () => {
    const before = (await run(["config", "get"])).stdout;
    const file = join(dir, "bad.yaml");
    writeFileSync(file, model("ftp://nowhere").replace("path: nagios", "path: nagios\n    color: blue").replace("equals: critical", "regex: '('"));
    const refused = await run(["config", "apply", "-f", file]);
    expect(refused.exitCode).toBe(1);
    for (const fragment of ["color", "regex", "url"]) expect(refused.stderr).toContain(fragment);
    expect((await run(["config", "get"])).stdout).toBe(before);
    const unknown = await run(["deploy", "no-such-template"]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain("no-such-template");
  }, 30_000);

  test("configuration needs the admin token", async () => {
    const denied = await run(["config", "get"], reader);
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toContain("403");
  }, 30_000);
});
