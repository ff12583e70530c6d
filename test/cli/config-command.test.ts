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

  test("objects one by one: create, read, update, delete; references and stale edits are refused", async () => {
    const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      fetch(`${node.url}/api/v1/config${path}`, {
        method,
        headers: { authorization: `Bearer ${admin}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const policy = { name: "prom-metrics", type: "metric-listener", path: "prometheus", inputFormat: "json" };
    expect((await api("POST", "/policies", policy)).status).toBe(201);
    expect((await api("POST", "/policies", policy)).status).toBe(409);
    const read = (await (await api("GET", "/policies/prom-metrics")).json()) as { name: string; unmatched: string };
    expect(read).toMatchObject({ name: "prom-metrics", unmatched: "ignore" }); // defaults filled in
    expect((await api("PUT", "/policies/prom-metrics", { ...policy, path: "prom" })).status).toBe(200);
    expect(((await (await api("GET", "/policies/prom-metrics")).json()) as { path: string }).path).toBe("prom");
    expect((await api("PUT", "/policies/nope", { ...policy, name: "nope" })).status).toBe(404);
    expect((await api("PUT", "/policies/prom-metrics", { ...policy, name: "other" })).status).toBe(400);
    // A listener path already taken by another event listener is one of the problems listed.
    const clash = await api("POST", "/policies", { name: "second", type: "event-listener", path: "nagios", inputFormat: "xml" });
    expect(clash.status).toBe(400);
    expect(JSON.stringify(await clash.json())).toContain("path");
    // A policy a package still uses cannot go.
    const referenced = await api("DELETE", "/policies/nagios-events");
    expect(referenced.status).toBe(400);
    expect((await api("DELETE", "/policies/prom-metrics")).status).toBe(200);
    expect((await api("GET", "/policies/prom-metrics")).status).toBe(404);
    // A whole-model write based on an old draft index loses.
    const current = await api("GET", "");
    const index = Number(current.headers.get("x-opsconn-draft-index"));
    const text = await current.text();
    expect((await api("PUT", "", undefined, { "content-type": "application/json", "if-match": String(index - 1) })).status).toBe(400);
    const stale = await fetch(`${node.url}/api/v1/config`, { method: "PUT", body: text, headers: { authorization: `Bearer ${admin}`, "content-type": "application/json", "if-match": String(index - 1) } });
    expect(stale.status).toBe(409);
    const fresh = await fetch(`${node.url}/api/v1/config`, { method: "PUT", body: text, headers: { authorization: `Bearer ${admin}`, "content-type": "application/json", "if-match": String(index) } });
    expect(fresh.status).toBe(200);
    expect((await api("GET", "/connected-server")).status).toBe(200);
  }, 30_000);

  test("configuration needs the admin token", async () => {
    const denied = await run(["config", "get"], reader);
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toContain("403");
  }, 30_000);
});
