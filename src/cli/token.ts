// Runs `geokv token hash`: the token from the argument or stdin, the
// tokens file's "sha256:<hex>" on stdout. The token itself is never printed.

import { tokenHashLine, type TokenCommand } from "./token-args.js";

/** Bound on what is read from stdin: a token, not a file. */
const STDIN_BYTES_MAX = 64 * 1024;

async function readStdin(): Promise<string | null> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    bytes += b.length;
    if (bytes > STDIN_BYTES_MAX) return null;
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Prints the hash line; returns the exit code (2 for a token that cannot be one). */
export async function runTokenHash(cmd: TokenCommand): Promise<number> {
  const raw = cmd.token ?? (await readStdin());
  if (raw === null) {
    process.stderr.write(`geokv: the token on stdin is over ${STDIN_BYTES_MAX} bytes\n`);
    return 2;
  }
  const r = tokenHashLine(raw, cmd.token === undefined);
  if ("problem" in r) {
    process.stderr.write(`geokv: ${r.problem}\n`);
    return 2;
  }
  process.stdout.write(`${r.line}\n`);
  return 0;
}
