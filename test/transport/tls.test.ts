/**
 * @module wss:// peer links: a throwaway self-signed certificate for 127.0.0.1 (made with the
 * openssl CLI; skipped where it is missing), an acceptor serving TLS and a dialer trusting that
 * certificate as its CA. A dialer without the CA is refused by certificate verification.
 */
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { Logger } from "../../server/log/logger.ts";
import type { Message, NodeId } from "../../server/raft/types.ts";
import { peerWebSocket, registerPeerRoute } from "../../server/transport/peer-route.ts";
import { Transport, type TransportOptions } from "../../server/transport/transport.ts";

// Generous: the CI box has two cores that other suites may be saturating; waits are bounded anyway.
setDefaultTimeout(30_000);

const openssl = Bun.which("openssl");
const dir = mkdtempSync(join(tmpdir(), "opsconn-tls-"));
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function makeCertificate(): { cert: string; key: string } {
  const [certPath, keyPath] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  const result = Bun.spawnSync([
    openssl!, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyPath, "-out", certPath, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
  ], { stdout: "ignore", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`openssl failed: ${result.stderr.toString()}`);
  return { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8") };
}

function node(id: NodeId, options: { tls?: TransportOptions["tls"]; serverTls?: { cert: string; key: string } }) {
  const log = new Logger({ node: id, level: "error", pretty: false, sink: { write: () => {} } });
  const transport = new Transport({ id, secret: "tls-test-secret-0123456789", log, backoff: { delayMinMs: 10, delayMaxMs: 50 }, ...(options.tls === undefined ? {} : { tls: options.tls }) });
  const app = new Hono();
  registerPeerRoute(app, transport);
  const server = Bun.serve({
    hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket: peerWebSocket,
    ...(options.serverTls === undefined ? {} : { tls: options.serverTls }),
  });
  const received: Message[] = [];
  transport.onMessages((messages) => void received.push(...messages));
  cleanups.push(async () => {
    transport.stop();
    await server.stop(true);
  });
  return { id, transport, address: `127.0.0.1:${server.port}`, received };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await Bun.sleep(5);
  return condition();
}

describe.skipIf(openssl === null)("wss:// peer links", () => {
  const certificate = openssl === null ? { cert: "", key: "" } : makeCertificate();

  function pair(dialerTls: TransportOptions["tls"]) {
    const a = node("a", { tls: dialerTls });
    const b = node("b", { serverTls: certificate });
    const peers = new Map([["a", a.address], ["b", b.address]]);
    for (const n of [a, b]) {
      n.transport.setPeers(peers);
      n.transport.start();
    }
    return { a, b };
  }

  test("a dialer trusting the certificate connects and traffic flows both ways", async () => {
    const { a, b } = pair({ ca: certificate.cert });
    a.transport.send([{ type: "timeout-now", from: "a", to: "b", term: 3 }]);
    b.transport.send([{ type: "timeout-now", from: "b", to: "a", term: 4 }]);
    expect(await waitFor(() => a.received.length === 1 && b.received.length === 1, 5000)).toBe(true);
  });

  test("a dialer that does not trust the certificate never connects", async () => {
    const { a, b } = pair(true);
    a.transport.send([{ type: "timeout-now", from: "a", to: "b", term: 3 }]);
    expect(await waitFor(() => b.received.length > 0, 300)).toBe(false);
    expect(a.transport.stats().get("b")?.connected).toBe(false);
  });
});
