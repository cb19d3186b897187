// Checks shared by every command that takes a KEY or a node's URL, so the
// wording of a usage error is the same whichever command met it.

import { MAX_KEY_BYTES, utf8ByteLength, validateKey } from "../core/key.js";

/** A `--node URL` for the data commands, or a problem description. */
export function checkNodeUrl(raw: string): string | undefined {
  try {
    const u = new URL(raw);
    if (u.protocol === "http:" || u.protocol === "https:") return undefined;
  } catch {
    // fall through to the message
  }
  return `--node must be a node's URL (http://127.0.0.1:7101), got ${JSON.stringify(raw)}`;
}

/** A usage error for KEY: which keys exist is src/core/key.ts's call; the wording is the CLI's. */
export function checkKey(key: string): string | undefined {
  if (validateKey(key) === null) return undefined;
  if (key === "") return "KEY must not be empty";
  const bytes = utf8ByteLength(key);
  if (bytes > MAX_KEY_BYTES) return `KEY is ${bytes} bytes; at most ${MAX_KEY_BYTES}`;
  return "KEY is not valid UTF-8";
}
