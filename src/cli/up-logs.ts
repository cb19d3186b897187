// The nodes' logs under `geokv up`. Each child writes its stdout and stderr
// straight into <data dir>/logs/<node>.log (the file is its fd 1 and 2, not a
// pipe through this process), so a log is complete even when `geokv up` dies
// first, and a node never meets a broken pipe. This file reads the new lines
// of those files as they grow: for --verbose, pretty-printed in the style of
// pino-pretty, and for the reasons of role changes, which only the log has.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { RoleRecord } from "./up-view.js";

/** Bytes read from one log per drain; a burst beyond it is read on the next one. */
const DRAIN_BYTES_MAX = 1 << 20;
/** A line longer than this (a runaway stack dump) is cut when shown. */
const SHOWN_LINE_CHARS_MAX = 2000;

/** pino's numeric levels. */
const LEVELS: Readonly<Record<number, string>> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** Fields every line has, or that the prefix already shows. */
const HIDDEN_FIELDS = new Set(["level", "time", "pid", "hostname", "node", "region", "msg"]);

/** One log line: a pino JSON record, or text (a crash trace on stderr). */
export type LogLine = { readonly node: string; readonly record: Readonly<Record<string, unknown>> } | { readonly node: string; readonly text: string };

/** Follows one node's log file from where it was when the node started. */
export class LogTail {
  private readonly fd: number;
  private offset: number;
  private partial = "";

  constructor(
    readonly node: string,
    path: string,
  ) {
    this.fd = openSync(path, "r");
    this.offset = fstatSync(this.fd).size;
  }

  /** The complete lines written since the last call. */
  drain(): LogLine[] {
    const size = fstatSync(this.fd).size;
    if (size <= this.offset) return [];
    const buf = Buffer.alloc(Math.min(size - this.offset, DRAIN_BYTES_MAX));
    const n = readSync(this.fd, buf, 0, buf.length, this.offset);
    this.offset += n;
    const text = this.partial + buf.toString("utf8", 0, n);
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    return lines.filter((l) => l.trim() !== "").map((l) => parseLogLine(this.node, l));
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** A line as a JSON record when it is one. */
export function parseLogLine(node: string, line: string): LogLine {
  if (line.startsWith("{")) {
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v === "object" && v !== null && !Array.isArray(v)) return { node, record: v as Record<string, unknown> };
    } catch {
      // not JSON after all: shown as text
    }
  }
  return { node, text: line };
}

/** The role change a record reports (the election driver's "role ..." line), if it is one. */
export function roleRecordOf(line: LogLine): RoleRecord | null {
  if (!("record" in line)) return null;
  const { role, epoch, reason } = line.record;
  if (typeof role !== "string" || typeof epoch !== "number" || typeof reason !== "string") return null;
  return { role, epoch, reason };
}

/** HH:MM:SS of a local time. */
export function clockTime(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}

function fieldText(v: unknown): string {
  if (typeof v === "string") return /\s/.test(v) || v === "" ? JSON.stringify(v) : v;
  if (typeof v === "object" && v !== null && "message" in v && typeof v.message === "string") return JSON.stringify(v.message);
  return JSON.stringify(v) ?? String(v);
}

/** "12:01:03.123 us-east-1  INFO  node serving url=http://... failover=auto", like pino-pretty's single-line mode. */
export function prettyLine(line: LogLine, nodeWidth: number): string {
  const node = line.node.padEnd(nodeWidth);
  if ("text" in line) return `${" ".repeat(12)} ${node}  ${line.text}`.slice(0, SHOWN_LINE_CHARS_MAX);
  const r = line.record;
  const time = typeof r.time === "number" ? `${clockTime(r.time)}.${String(r.time % 1000).padStart(3, "0")}` : " ".repeat(12);
  const level = (typeof r.level === "number" ? (LEVELS[r.level] ?? String(r.level)) : "?").padEnd(5);
  const msg = typeof r.msg === "string" ? r.msg : "";
  const fields = Object.entries(r)
    .filter(([k]) => !HIDDEN_FIELDS.has(k))
    .map(([k, v]) => [k, fieldText(v)] as const)
    // A field the message already says (the role line's role, leader, reason) is not repeated.
    .filter(([, v]) => {
      const bare = v.replace(/^"|"$/g, "");
      return bare.length < 3 || !msg.includes(bare);
    })
    .map(([k, v]) => `${k}=${v}`);
  return [`${time} ${node}  ${level} ${msg}`, ...fields].join(" ").slice(0, SHOWN_LINE_CHARS_MAX);
}
