/**
 * The one logger. Everything goes to stderr (stdout belongs to each program's
 * product). Redaction is a property of the logger, not of call sites: every
 * message and field passes through {@linkcode redactValue}.
 */
import { redactText, redactValue } from "./redact.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Readonly<Record<string, unknown>>;

/** A structured logger. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Program name shown in text lines. */
  name?: string;
  /** Where lines go; defaults to stderr. */
  write?: (line: string) => void;
  now?: () => Date;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/** Creates a logger that redacts secrets from every line it writes. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const format = options.format ?? "text";
  const write = options.write ?? writeStderr;
  const now = options.now ?? (() => new Date());
  const name = options.name ?? "gcp-gate";

  function log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (RANK[level] < min) return;
    const safeMsg = redactText(msg);
    const safeFields = fields ? (redactValue(fields) as Record<string, unknown>) : {};
    if (format === "json") {
      write(JSON.stringify({ time: now().toISOString(), level, msg: safeMsg, ...safeFields }));
      return;
    }
    const extra = Object.entries(safeFields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v)}`)
      .join(" ");
    write(`${name}: ${level === "info" ? "" : level + ": "}${safeMsg}${extra ? " " + extra : ""}`);
  }

  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
  };
}
