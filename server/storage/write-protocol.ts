/**
 * @module Messages between the node and its storage write thread. Blob arguments travel packed in
 * one transferred buffer: structured-cloning a Uint8Array view would copy its whole underlying
 * buffer (entry data are views into large transport frames).
 */
import type { SqlStatement, SqlValue } from "./sql-writer.ts";

/** A blob argument: a slice of the packed buffer. */
export interface BlobRef {
  readonly blobOffset: number;
  readonly blobLength: number;
}

export type PackedValue = Exclude<SqlValue, Uint8Array> | BlobRef;

export interface PackedStatement {
  readonly sql: string;
  readonly args: PackedValue[];
}

export type WriteRequest =
  | { readonly type: "open"; readonly path: string }
  | { readonly type: "commit"; readonly id: number; readonly durable: boolean; readonly statements: PackedStatement[]; readonly blobs: ArrayBuffer }
  | { readonly type: "close" };

export type WriteReply =
  | { readonly type: "opened" }
  | { readonly type: "committed"; readonly id: number }
  | { readonly type: "failed"; readonly id: number; readonly message: string }
  | { readonly type: "closed" };

export function packStatements(statements: readonly SqlStatement[]): { statements: PackedStatement[]; blobs: ArrayBuffer } {
  let blobBytes = 0;
  for (const statement of statements) for (const arg of statement.args) if (arg instanceof Uint8Array) blobBytes += arg.byteLength;
  const blobs = new Uint8Array(blobBytes);
  let offset = 0;
  const packed = statements.map((statement) => ({
    sql: statement.sql,
    args: statement.args.map((arg): PackedValue => {
      if (!(arg instanceof Uint8Array)) return arg;
      blobs.set(arg, offset);
      const ref = { blobOffset: offset, blobLength: arg.byteLength };
      offset += arg.byteLength;
      return ref;
    }),
  }));
  return { statements: packed, blobs: blobs.buffer };
}

export function unpackStatements(statements: readonly PackedStatement[], blobs: ArrayBuffer): SqlStatement[] {
  const bytes = new Uint8Array(blobs);
  return statements.map((statement) => ({
    sql: statement.sql,
    args: statement.args.map((arg) => (arg !== null && typeof arg === "object" ? bytes.subarray(arg.blobOffset, arg.blobOffset + arg.blobLength) : arg)),
  }));
}
