/**
 * @module Multi-row statements with stable SQL text: rows are split into power-of-two chunks
 * (37 rows → 32 + 4 + 1), so a statement for any row count is one of a few texts that stay
 * prepared (sql-writer.ts), and each chunk stays under SQLite's bound-parameter limit.
 */
import { assert } from "../assert.ts";
import type { SqlStatement, SqlValue } from "./sql-writer.ts";

/** SQLite binds at most 32,766 parameters per statement. */
const parametersMax = 32_766;

export interface MultiRowShape {
  /** e.g. "INSERT INTO kv (key, value, mod_index) VALUES" */
  readonly head: string;
  /** Values per row, e.g. 3 for "(?,?,?)". */
  readonly columns: number;
  /** e.g. "ON CONFLICT(key) DO UPDATE SET ..." or "". */
  readonly tail: string;
}

const texts = new WeakMap<MultiRowShape, Map<number, string>>();

function sqlFor(shape: MultiRowShape, rows: number): string {
  let byRows = texts.get(shape);
  if (byRows === undefined) texts.set(shape, (byRows = new Map()));
  let sql = byRows.get(rows);
  if (sql === undefined) {
    const row = `(${Array(shape.columns).fill("?").join(",")})`;
    sql = `${shape.head} ${Array(rows).fill(row).join(",")} ${shape.tail}`.trim();
    byRows.set(rows, sql);
  }
  return sql;
}

/** Appends to `out` the statements that write `args` (row after row, `shape.columns` values each). */
export function multiRow(shape: MultiRowShape, args: readonly SqlValue[], out: SqlStatement[]): void {
  assert(args.length % shape.columns === 0, "arguments are whole rows");
  let rowsLeft = args.length / shape.columns;
  let chunk = 1;
  while (chunk * 2 * shape.columns <= parametersMax) chunk *= 2;
  let offset = 0;
  while (rowsLeft > 0) {
    while (chunk > rowsLeft) chunk /= 2;
    const width = chunk * shape.columns;
    out.push({ sql: sqlFor(shape, chunk), args: args.slice(offset, offset + width) });
    offset += width;
    rowsLeft -= chunk;
  }
}

/** `DELETE FROM t WHERE c IN (?,...)` for many keys, in the same stable chunks. */
export function deleteWhereIn(table: string, column: string, keys: readonly SqlValue[], out: SqlStatement[]): void {
  multiRow(deleteShape(table, column), keys, out);
}

const deleteShapes = new Map<string, MultiRowShape>();
function deleteShape(table: string, column: string): MultiRowShape {
  const name = `${table}.${column}`;
  let shape = deleteShapes.get(name);
  if (shape === undefined) deleteShapes.set(name, (shape = { head: `DELETE FROM ${table} WHERE ${column} IN (`, columns: 1, tail: ")" }));
  return shape;
}
