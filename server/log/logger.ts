/**
 * @module Structured logs: one JSON object per line (level, time, node, msg, fields) so machines can
 * ship them; a short human line instead when stdout is a terminal, so people can read them.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const logLevels = Object.keys(levelRank) as LogLevel[];

export interface LogSink {
  write(line: string): void;
}

export interface LoggerOptions {
  readonly node: string;
  readonly level: LogLevel;
  /** Human-readable lines instead of JSON. Defaults to whether stdout is a terminal. */
  readonly pretty?: boolean;
  readonly sink?: LogSink;
  readonly clock?: () => Date;
}

export class Logger {
  private readonly pretty: boolean;
  private readonly sink: LogSink;
  private readonly clock: () => Date;

  constructor(private readonly options: LoggerOptions) {
    this.pretty = options.pretty ?? Boolean(process.stdout.isTTY);
    this.sink = options.sink ?? { write: (line) => process.stdout.write(line) };
    this.clock = options.clock ?? (() => new Date());
  }

  /** A logger for one component: its fields are added to every line. */
  child(fields: LogFields): Logger {
    const parent = this;
    const child = Object.create(parent) as Logger;
    child.log = (level, msg, more) => parent.log(level, msg, { ...fields, ...more });
    return child;
  }

  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (levelRank[level] < levelRank[this.options.level]) return;
    const time = this.clock().toISOString();
    this.sink.write(this.pretty ? prettyLine(level, time, this.options.node, msg, fields) : jsonLine(level, time, this.options.node, msg, fields));
  }
}

function jsonLine(level: LogLevel, time: string, node: string, msg: string, fields: LogFields): string {
  return JSON.stringify({ level, time, node, msg, ...(Object.keys(fields).length > 0 ? { fields: serializable(fields) } : {}) }) + "\n";
}

function prettyLine(level: LogLevel, time: string, node: string, msg: string, fields: LogFields): string {
  const extra = Object.entries(serializable(fields))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} [${node}] ${msg}${extra ? "  " + extra : ""}\n`;
}

/** Errors do not survive JSON.stringify; keep their message and stack. */
function serializable(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? { name: value.name, message: value.message } : value;
  }
  return out;
}
