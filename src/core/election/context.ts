// The scratchpad of one `step`: the state as it evolves, the messages and the
// durable record it produces, and the reason for a role change. step() is pure
// from the outside; inside, handlers append to this draft, which keeps each of
// them short. Nothing outlives the call.

import { compareRank, type MemberConfig } from "../cluster-view.js";
import type { NodeId } from "../ids.js";
import type { ElectionBody, ElectionMsg, ElectionState, Vote } from "./types.js";

export interface Ctx {
  s: ElectionState;
  /** `now` on the awake clock (stalls taken out). */
  readonly nowMs: number;
  readonly random: number;
  readonly send: Array<{ to: NodeId; msg: ElectionMsg }>;
  /** Set once epoch or vote changed in this step. */
  durableChanged: boolean;
  /** Why the role, leader or epoch changed (last transition wins). */
  reason: string;
  refused: string | undefined;
}

/** Bound on messages one step may emit: a broadcast plus a few replies. */
export const SEND_PER_STEP_MAX = 64;

export function self(ctx: Ctx): NodeId {
  return ctx.s.cfg.self.node;
}

/** Sends `body` stamped with this node's id and `epoch` (the current one by default). */
export function sendTo(ctx: Ctx, to: NodeId, body: ElectionBody, epoch: number = ctx.s.epoch): void {
  // A node never messages itself: its own vote and confirmation are implicit.
  if (to === self(ctx)) throw new Error(`election: ${to} would send ${body.type} to itself`);
  if (ctx.send.length >= SEND_PER_STEP_MAX) throw new Error(`election: more than ${SEND_PER_STEP_MAX} messages in one step`);
  ctx.send.push({ to, msg: { ...body, from: self(ctx), epoch } as ElectionMsg });
}

/** Sends `body` to every other member of the region. */
export function broadcast(ctx: Ctx, body: ElectionBody, epoch?: number): void {
  for (const node of ctx.s.ranked) {
    if (node !== self(ctx)) sendTo(ctx, node, body, epoch);
  }
}

/**
 * Moves the durable epoch and vote forward. Both only ever move forward, and a
 * vote never changes within an epoch: that is what makes "at most one leader
 * per epoch" hold, so a violation is a bug in this machine, not bad input.
 */
export function setDurable(ctx: Ctx, epoch: number, vote: Vote | null): void {
  const s = ctx.s;
  if (!Number.isSafeInteger(epoch) || epoch < s.epoch) throw new Error(`election: epoch would go back from ${s.epoch} to ${epoch}`);
  if (vote !== null) {
    if (vote.epoch > epoch) throw new Error(`election: vote for epoch ${vote.epoch} above epoch ${epoch}`);
    if (s.vote !== null) {
      if (vote.epoch < s.vote.epoch) throw new Error(`election: vote would go back from epoch ${s.vote.epoch} to ${vote.epoch}`);
      if (vote.epoch === s.vote.epoch && vote.node !== s.vote.node) {
        throw new Error(`election: second vote in epoch ${vote.epoch} (${s.vote.node}, then ${vote.node})`);
      }
    }
  } else if (s.vote !== null) {
    throw new Error("election: a vote is never erased");
  }
  if (epoch === s.epoch && vote?.epoch === s.vote?.epoch && vote?.node === s.vote?.node) return;
  ctx.s = { ...s, epoch, vote, seenEpoch: Math.max(s.seenEpoch, epoch) };
  ctx.durableChanged = true;
}

/** The member record of `node`; every id the machine handles is a member. */
export function member(ctx: Ctx, node: NodeId): MemberConfig {
  const m = ctx.s.cfg.members.find((x) => x.node === node);
  if (m === undefined) throw new Error(`election: ${node} is not a member of region ${ctx.s.cfg.self.region}`);
  return m;
}

/** True when `a` ranks above `b` in the Bully order. */
export function outranks(ctx: Ctx, a: NodeId, b: NodeId): boolean {
  return compareRank(member(ctx, a), member(ctx, b)) < 0;
}

/**
 * True while this node stays out of elections (no ANSWER, no candidacy): for
 * a while after an operator stepdown, and while its clock is skewed.
 */
export function abstaining(ctx: Ctx): boolean {
  return ctx.s.clockSkewed || ctx.nowMs < ctx.s.abstainUntilMs;
}
