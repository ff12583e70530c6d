/**
 * A group over TLS: the API and the peer links share one TLS port. A throwaway self-signed
 * certificate for 127.0.0.1 (openssl CLI) serves as every node's certificate and as the CA peers
 * check each other against. Writes through a follower are relayed to the leader over wss://.
 */
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { bunPath, cleanupAll, freePorts, runCli, startNode, tempDir, type RunningNode } from "../support/node-process.ts";

afterAll(cleanupAll);
const openssl = Bun.which("openssl");

function certificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const made = Bun.spawnSync([openssl!, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
  if (made.exitCode !== 0) throw new Error(`openssl failed: ${made.stderr.toString()}`);
  return { cert, key };
}

async function status(node: RunningNode, ca: string): Promise<{ raft: { role: string; leader: string | null } } | null> {
  try {
    return (await (await fetch(`${node.url}/api/v1/status`, { tls: { ca } })).json()) as { raft: { role: string; leader: string | null } };
  } catch {
    return null;
  }
}

test.skipIf(openssl === null)("three nodes elect a leader and replicate over TLS; plain HTTP is refused", async () => {
  const dir = tempDir();
  const { cert, key } = certificate(dir);
  const ca = readFileSync(cert, "utf8");
  const ports = freePorts(3);
  const initial = ports.map((p, i) => `t${i + 1}=127.0.0.1:${p}`).join(",");
  const nodes = await Promise.all(
    ports.map((port, i) =>
      startNode([bunPath, "server/main.ts"], [
        ...["--node-id", `t${i + 1}`, "--port", String(port), "--data-dir", join(dir, `t${i + 1}`)],
        ...["--initial-cluster", initial, "--cluster-secret", "tls-group-secret-0123456789"],
        ...["--tls-cert", cert, "--tls-key", key, "--tls-ca", cert],
      ]),
    ),
  );
  expect(nodes.every((n) => n.url.startsWith("https://"))).toBe(true);
  let leaderId: string | null = null;
  for (let i = 0; i < 200 && leaderId === null; i++) {
    const statuses = await Promise.all(nodes.map((n) => status(n, ca)));
    leaderId = statuses.find((s) => s?.raft.role === "leader") ? statuses.find((s) => s?.raft.role === "leader")!.raft.leader : null;
    if (leaderId === null) await Bun.sleep(50);
  }
  expect(leaderId).not.toBeNull();
  const follower = nodes.find((n) => !n.lines.some((l) => l.includes(`"node":"${leaderId}"`)))!;
  const put = await fetch(`${follower.url}/api/v1/kv/secure`, { method: "PUT", body: "yes", tls: { ca } });
  expect(put.status).toBe(200);
  for (const node of nodes) {
    const got = await fetch(`${node.url}/api/v1/kv/secure`, { tls: { ca } });
    expect(await got.text()).toBe("yes");
  }
  const plain = await fetch(follower.url.replace("https://", "http://") + "/healthz").then(
    (r) => r.status,
    () => "refused",
  );
  expect(plain).not.toBe(200);
  for (const node of nodes) node.proc.kill("SIGTERM");
  await Promise.all(nodes.map((n) => n.proc.exited));
}, 60_000);

test("a TLS key without its certificate is one clear configuration error", async () => {
  const { stderr, exitCode } = await runCli([bunPath, "server/main.ts"], ["node", "--tls-key", "/nonexistent.pem"]);
  expect(exitCode).toBe(2);
  expect(stderr).toContain("TLS needs both tlsCertFile and tlsKeyFile");
});
