/** The load generator's HTTP/1.1 response framing (bench/support/http-client.ts). */
import { describe, expect, test } from "bun:test";
import { parseResponse } from "../../bench/support/http-client.ts";

const parse = (text: string) => parseResponse(Buffer.from(text, "latin1"));

describe("parseResponse", () => {
  test("a Content-Length body, header names in any case", () => {
    const parsed = parse("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nCONTENT-LENGTH: 11\r\n\r\n{\"ok\":true}");
    expect(parsed).toEqual({ status: 201, body: Buffer.from('{"ok":true}'), close: false });
  });

  test("incomplete until the head and the whole body are there", () => {
    expect(parse("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n")).toBe("incomplete");
    expect(parse("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc")).toBe("incomplete");
  });

  test("chunked bodies are joined; Connection: close is reported", () => {
    const parsed = parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    expect(parsed).toEqual({ status: 200, body: Buffer.from("abcde"), close: true });
    expect(parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")).toBe("incomplete");
  });

  test("no framing, or not HTTP, is unsupported; 204 has no body", () => {
    expect(parse("HTTP/1.1 200 OK\r\nx: y\r\n\r\nbody")).toBe("unsupported");
    expect(parse("SMTP 220 hello\r\n\r\n")).toBe("unsupported");
    expect(parse("HTTP/1.1 204 No Content\r\n\r\n")).toEqual({ status: 204, body: Buffer.alloc(0), close: false });
  });
});
