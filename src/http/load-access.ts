// Builds a node's client tokens at start: the variables' tokens and the
// tokens file's entries (read here, the one file I/O of access control), as
// one AccessTokens. Any problem is one line naming the file and the entry,
// and the node does not start.

import { readFileSync } from "node:fs";
import { accessTokens, type AccessTokens, type VariableTokens } from "./access.js";
import { formatTokensFileError, isTokensFileError, parseTokensFile } from "./tokens-file.js";

/** The settings access control reads. */
export interface AccessSettings extends VariableTokens {
  readonly tokensFile: string | undefined;
}

/** The node's tokens, or the problem (one line) that must stop it. */
export function loadAccess(s: AccessSettings, read: (path: string) => string = (p) => readFileSync(p, "utf8")): AccessTokens | { readonly problem: string } {
  let file: ReturnType<typeof parseTokensFile> = [];
  if (s.tokensFile !== undefined) {
    let text: string;
    try {
      text = read(s.tokensFile);
    } catch (e) {
      return { problem: `tokens file ${s.tokensFile}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
    }
    file = parseTokensFile(text, s.tokensFile);
    if (isTokensFileError(file)) return { problem: formatTokensFileError(file) };
  }
  return accessTokens(s, file);
}
