/**
 * @module A minimal HTTP/1.1 keep-alive client over one Bun TCP socket, for the load generator.
 * Why not fetch: Bun's fetch keeps a bounded pool of idle keep-alive sockets, so past ~64
 * concurrent requests to one host it closes and reopens connections (measured: 14k TIME-WAIT sockets
 * in a 5 s run at 256 clients, throughput halved and erratic). That would benchmark connection
 * setup on both sides, not replication. Here each load client owns one persistent connection per
 * target, exactly like etcd's benchmark tool. One request in flight per connection (no pipelining);
 * responses are framed by Content-Length or chunked encoding; anything else closes the connection.
 */
import type { Socket } from "bun";

export interface HttpResponse {
  readonly status: number;
  readonly body: Buffer;
}

interface Pending {
  readonly resolve: (response: HttpResponse) => void;
  readonly reject: (error: Error) => void;
  readonly deadlineMs: number;
}

/**
 * Request deadlines are checked by one sweep for all connections rather than a timer per request:
 * a setTimeout/clearTimeout pair per request was a large share of the generator's CPU, which it
 * takes from the systems under test on a 2-core machine.
 */
const sweepEveryMs = 50;
const openConnections = new Set<HttpConnection>();
let sweeper: ReturnType<typeof setInterval> | null = null;

function watch(connection: HttpConnection): void {
  openConnections.add(connection);
  sweeper ??= setInterval(() => {
    const now = performance.now();
    for (const c of openConnections) c.expire(now);
  }, sweepEveryMs);
}

function unwatch(connection: HttpConnection): void {
  openConnections.delete(connection);
  if (openConnections.size === 0 && sweeper !== null) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

const headerEnd = Buffer.from("\r\n\r\n");
const crlf = Buffer.from("\r\n");
const emptyBuffer = Buffer.alloc(0);
/** A response larger than this is a protocol error here (the benchmarks read small JSON bodies). */
const responseBytesMax = 4 * 1024 * 1024;

export class HttpConnection {
  private socket: Socket<undefined> | null = null;
  private connecting: Promise<Socket<undefined>> | null = null;
  private buffer: Buffer = emptyBuffer;
  private pending: Pending | null = null;
  private unwritten: Buffer | null = null;

  constructor(
    private readonly hostname: string,
    private readonly port: number,
  ) {}

  /** Sends one request and resolves with the complete response; rejects on network error or timeout. */
  async request(method: string, path: string, contentType: string, body: string, timeoutMs: number): Promise<HttpResponse> {
    if (this.pending !== null) throw new Error("HttpConnection: one request at a time");
    const socket = this.socket ?? (await this.connect());
    const bodyBytes = Buffer.byteLength(body);
    const bytes = Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: ${this.hostname}:${this.port}\r\ncontent-type: ${contentType}\r\ncontent-length: ${bodyBytes}\r\n\r\n${body}`);
    return new Promise<HttpResponse>((resolve, reject) => {
      this.pending = { resolve, reject, deadlineMs: performance.now() + timeoutMs };
      this.buffer = emptyBuffer;
      this.write(socket, bytes);
    });
  }

  /** Called by the sweep: fails a request past its deadline. */
  expire(nowMs: number): void {
    if (this.pending !== null && nowMs >= this.pending.deadlineMs) this.fail(new Error(`timeout after deadline`));
  }

  /** Opens the connection ahead of the first request, so a timed window measures no handshakes. */
  async open(): Promise<void> {
    if (this.socket === null) await this.connect();
  }

  close(): void {
    this.fail(new Error("connection closed by client"));
    unwatch(this);
  }

  private connect(): Promise<Socket<undefined>> {
    this.connecting ??= Bun.connect<undefined>({
      hostname: this.hostname,
      port: this.port,
      socket: {
        data: (_socket, chunk) => this.onData(chunk),
        drain: (socket) => {
          const rest = this.unwritten;
          this.unwritten = null;
          if (rest !== null) this.write(socket, rest);
        },
        close: () => this.onClosed(new Error("connection closed by peer")),
        error: (_socket, error) => this.onClosed(error),
        connectError: (_socket, error) => this.onClosed(error),
      },
    }).then(
      (socket) => {
        this.connecting = null;
        socket.setNoDelay(true);
        this.socket = socket;
        watch(this);
        return socket;
      },
      (error: unknown) => {
        this.connecting = null;
        throw error instanceof Error ? error : new Error(String(error));
      },
    );
    return this.connecting;
  }

  private write(socket: Socket<undefined>, bytes: Buffer): void {
    const written = socket.write(bytes);
    if (written < bytes.length) this.unwritten = bytes.subarray(Math.max(0, written));
  }

  private onData(chunk: Buffer): void {
    if (this.pending === null) {
      // Bytes nobody asked for: the framing is lost, so this connection cannot be reused.
      this.fail(new Error("unexpected data"));
      return;
    }
    // The chunk may be reused once this returns: parse it in place, copy only what must wait.
    const data = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.buffer = data;
    if (this.buffer.length > responseBytesMax) {
      this.fail(new Error(`response over ${responseBytesMax} bytes`));
      return;
    }
    const parsed = parseResponse(data);
    if (parsed === "incomplete") {
      if (data === chunk) this.buffer = Buffer.from(chunk);
      return;
    }
    if (parsed === "unsupported") {
      this.fail(new Error("response without Content-Length or chunked framing"));
      return;
    }
    const pending = this.pending;
    this.pending = null;
    this.buffer = emptyBuffer;
    if (parsed.close) this.dropSocket();
    pending.resolve({ status: parsed.status, body: data === chunk ? Buffer.from(parsed.body) : parsed.body });
  }

  private onClosed(error: Error): void {
    this.socket = null;
    this.fail(error);
  }

  private fail(error: Error): void {
    this.dropSocket();
    const pending = this.pending;
    this.pending = null;
    this.buffer = emptyBuffer;
    if (pending !== null) pending.reject(error);
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = null;
    this.unwritten = null;
    socket?.terminate();
  }
}

type Parsed = { readonly status: number; readonly body: Buffer; readonly close: boolean } | "incomplete" | "unsupported";

/** Parses one complete response from the start of `buffer`, or says why it cannot yet. */
export function parseResponse(buffer: Buffer): Parsed {
  const end = buffer.indexOf(headerEnd);
  if (end < 0) return "incomplete";
  // One lower-cased copy of the head and a few searches: splitting it into lines and fields per
  // response cost more than the rest of the client.
  const head = buffer.toString("latin1", 0, end).toLowerCase();
  const status = Number(head.slice(head.indexOf(" ") + 1, head.indexOf(" ") + 4));
  if (!head.startsWith("http/1.") || !Number.isInteger(status)) return "unsupported";
  const contentLength = headerNumber(head, "\r\ncontent-length:");
  const chunked = headerValue(head, "\r\ntransfer-encoding:")?.includes("chunked") ?? false;
  const close = headerValue(head, "\r\nconnection:")?.includes("close") ?? false;
  const bodyStart = end + headerEnd.length;
  if (status === 204 || status === 304) return { status, body: emptyBuffer, close };
  if (chunked) {
    const body = parseChunked(buffer, bodyStart);
    return body === null ? "incomplete" : { status, body, close };
  }
  if (contentLength < 0) return "unsupported";
  if (buffer.length < bodyStart + contentLength) return "incomplete";
  return { status, body: buffer.subarray(bodyStart, bodyStart + contentLength), close };
}

function headerValue(head: string, name: string): string | null {
  const at = head.indexOf(name);
  if (at < 0) return null;
  const lineEnd = head.indexOf("\r\n", at + name.length);
  return head.slice(at + name.length, lineEnd < 0 ? head.length : lineEnd).trim();
}

function headerNumber(head: string, name: string): number {
  const value = headerValue(head, name);
  return value === null || value === "" ? -1 : Number(value);
}

/** Decodes a chunked body starting at `from`; null until the terminating zero chunk has arrived. */
function parseChunked(buffer: Buffer, from: number): Buffer | null {
  const parts: Buffer[] = [];
  let at = from;
  for (let guard = 0; guard < 100_000; guard++) {
    const lineEnd = buffer.indexOf(crlf, at);
    if (lineEnd < 0) return null;
    const size = parseInt(buffer.toString("latin1", at, lineEnd).split(";")[0] ?? "", 16);
    if (!Number.isInteger(size) || size < 0) return null;
    const dataStart = lineEnd + 2;
    if (size === 0) {
      // No trailers are expected; the body ends with the empty line after the zero chunk.
      return buffer.length >= dataStart + 2 ? Buffer.concat(parts) : null;
    }
    if (buffer.length < dataStart + size + 2) return null;
    parts.push(buffer.subarray(dataStart, dataStart + size));
    at = dataStart + size + 2;
  }
  return null;
}
