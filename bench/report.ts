// Writes benchmark results into BENCHMARKS.md. Each benchmark owns one section
// (between marker comments), so running one benchmark rewrites its own table
// and leaves the others as they were. Every section carries the date and the
// machine it was measured on: numbers without a machine are not numbers.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";

/** One benchmark's result: a title, a markdown table, and notes. */
export interface BenchSection {
  readonly name: string;
  readonly title: string;
  readonly table: readonly (readonly string[])[];
  readonly notes: readonly string[];
}

const FILE = "BENCHMARKS.md";
const HEADER = `# Benchmarks

Written by \`npm run bench\` (never by hand). Each section says when and on what
machine it was measured. Ratios compare geokv with a baseline measured side by
side in the same run, so they travel between machines better than absolute
numbers do. Reproduce one section with \`npm run bench -- <name>\`.
`;

/** A one-line description of this machine. */
export function machine(): string {
  const c = cpus();
  const model = c[0]?.model.trim() ?? "unknown cpu";
  return `${c.length} x ${model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}/${process.arch}`;
}

function renderTable(rows: readonly (readonly string[])[]): string {
  const [head, ...body] = rows;
  if (!head) return "";
  const line = (r: readonly string[]) => `| ${r.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...body.map(line)].join("\n");
}

/** Renders a section with its markers, date and machine. */
export function renderSection(s: BenchSection, now = new Date()): string {
  return [
    `<!-- bench:${s.name}:start -->`,
    `## ${s.title}`,
    "",
    `Measured ${now.toISOString().slice(0, 16).replace("T", " ")} UTC on ${machine()}. Reproduce: \`npm run bench -- ${s.name}\`.`,
    "",
    renderTable(s.table),
    "",
    ...s.notes.map((n) => `- ${n}`),
    `<!-- bench:${s.name}:end -->`,
  ].join("\n");
}

/** Replaces (or appends) the section named `s.name` in BENCHMARKS.md. */
export function writeSection(s: BenchSection, file = FILE): void {
  let text = existsSync(file) ? readFileSync(file, "utf8") : HEADER;
  const start = `<!-- bench:${s.name}:start -->`;
  const end = `<!-- bench:${s.name}:end -->`;
  const rendered = renderSection(s);
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + rendered + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${rendered}\n`;
  writeFileSync(file, text.endsWith("\n") ? text : `${text}\n`);
}

/** Formats a number with thousands separators and `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
