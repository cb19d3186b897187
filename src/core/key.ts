// Key validation, the one place that decides which keys exist: every edge
// that accepts a key (HTTP paths, the binary codec, the CLI) and the storage
// assertions ask this file. The contract says a key is 1 to 1024 bytes of
// UTF-8; checking it once keeps the HTTP layer, the wire format and the
// store from disagreeing. The reasons are the messages clients see with 400
// invalid_key.

/** The longest key, in UTF-8 bytes (DESIGN.md: keys are 1 to 1024 bytes). */
export const MAX_KEY_BYTES = 1024;

/** Why a key was refused; the HTTP layer maps it to 400 invalid_key. */
export interface InvalidKeyError {
  readonly type: "invalid_key";
  readonly reason: string;
}

/**
 * UTF-8 length of `s`, or -1 when `s` has a lone surrogate (no UTF-8 form:
 * TextEncoder would silently turn it into U+FFFD and change the data).
 */
export function utf8ByteLength(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) return -1;
      bytes += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return -1;
    else bytes += 3;
  }
  return bytes;
}

/** True when `s` has no lone surrogates, so it survives a UTF-8 round trip. */
export function isWellFormedString(s: string): boolean {
  return utf8ByteLength(s) >= 0;
}

/** Null for an acceptable key, else why not (empty, over MAX_KEY_BYTES, not UTF-8). */
export function validateKey(key: string): InvalidKeyError | null {
  if (key.length === 0) return { type: "invalid_key", reason: "key is empty" };
  const bytes = utf8ByteLength(key);
  if (bytes < 0) return { type: "invalid_key", reason: "key is not valid UTF-8" };
  if (bytes > MAX_KEY_BYTES) return { type: "invalid_key", reason: `key is ${bytes} bytes; the limit is ${MAX_KEY_BYTES}` };
  return null;
}
