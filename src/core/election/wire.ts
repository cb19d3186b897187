// Election messages arrive as JSON in WebSocket control frames from peers:
// untrusted input, parsed once here into a typed ElectionMsg (fresh object,
// known fields only) or refused with a reason. Inside the machine, messages
// are trusted to be well formed (not to be truthful: the protocol handles that).

import { asNodeId, isValidId, type NodeId } from "../ids.js";
import { isValidVv, normalizeVv, type VersionVector } from "../version-vector.js";
import type { ElectionMsg, RejectCode } from "./types.js";

/** Longest reject reason kept; longer ones are cut (they are for logs only). */
export const REJECT_REASON_CHARS_MAX = 300;

const REJECT_CODES: ReadonlySet<string> = new Set<RejectCode>(["stale_epoch", "superseded", "voted_other", "leader_alive"]);

export type ParsedElectionMsg = { readonly ok: true; readonly msg: ElectionMsg } | { readonly ok: false; readonly error: string };

/** Parses a decoded JSON value (JSON.parse of a control frame) into an election message. */
export function parseElectionMsg(x: unknown): ParsedElectionMsg {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return fail("not an object");
  const o = x as Record<string, unknown>;
  const from = o["from"];
  if (typeof from !== "string" || !isValidId(from)) return fail("from: not a node id");
  const epoch = o["epoch"];
  if (!isEpoch(epoch)) return fail("epoch: not a non-negative integer");
  const head = { from: asNodeId(from), epoch };
  const type = o["type"];
  switch (type) {
    case "election":
    case "answer":
    case "stepdown":
      return ok({ ...head, type });
    case "alive": {
      const leader = o["leader"];
      if (typeof leader !== "string" || !isValidId(leader)) return fail("leader: not a node id");
      return ok({ ...head, type, leader: leader as NodeId });
    }
    case "coordinator":
    case "accept":
    case "heartbeat_ack": {
      const vv = parseVv(o["vv"]);
      if (vv === null) return fail("vv: not a version vector");
      const round = o["round"];
      if (!isRound(round)) return fail("round: not a finite number");
      return ok({ ...head, type, vv, round });
    }
    case "prevote":
    case "prevote_ok":
    case "heartbeat": {
      const round = o["round"];
      if (!isRound(round)) return fail("round: not a finite number");
      return ok({ ...head, type, round });
    }
    case "reject": {
      const code = o["code"];
      if (typeof code !== "string" || !REJECT_CODES.has(code)) return fail("code: unknown reject code");
      const reason = o["reason"];
      if (typeof reason !== "string") return fail("reason: not a string");
      return ok({ ...head, type, code: code as RejectCode, reason: reason.slice(0, REJECT_REASON_CHARS_MAX) });
    }
    default:
      return fail(`type: unknown message type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
}

function isEpoch(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function isRound(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

function parseVv(x: unknown): VersionVector | null {
  return isValidVv(x) ? normalizeVv(x) : null;
}

function ok(msg: ElectionMsg): ParsedElectionMsg {
  return { ok: true, msg };
}

function fail(error: string): ParsedElectionMsg {
  return { ok: false, error: `election message: ${error}` };
}
