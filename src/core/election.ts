// The in-region leader election (DESIGN.md "Leadership in a region"): Bully
// ranking made split-brain safe with durable epochs and votes, majority
// acceptance, a pre-vote, leases and fencing tokens. A pure state machine;
// the runtime drives it:
//
// - initElection(cfg, persisted, localVv, now, random) at start, with the
//   durable {epoch, vote} from storage ({epoch: 0, vote: null} the first time)
//   and the node's version vector.
// - step(state, input, now, random) for every input; `now` from a monotonic
//   clock (performance.now(), never Date.now()), `random` from Math.random():
//   - {type: "tick"} at least every heartbeatMs (heartbeatMs / 2 recommended).
//     A longer gap between inputs is taken for a pause of this node: beyond
//     2 heartbeats it is a stall that no timer counts, and the first tick after
//     any pause fires nothing, so read the sockets before the next tick;
//   - {type: "message"} for each election control frame from a peer of this
//     region, parsed once with parseElectionMsg (drop what does not parse);
//   - {type: "local_vv"} whenever the node's version vector grows (a pending
//     coordinator takes office only once it holds what its acceptors reported);
//   - {type: "stepdown"} / {type: "promote"} for the operator endpoints; a
//     refusal comes back in `refused`, with the reason to show.
// - For each output: make `persist` (epoch and vote) durable FIRST, then send
//   `send` as JSON control frames, then log `events`. Sending is best effort:
//   loss, duplication, delay and reordering are tolerated.
// - Take writes only while isActiveLeader(state); stamp replicated batches
//   with fencingToken(region, state) and refuse batches with an older epoch.
// - Acceptors push ops: when this node sends an `accept` to a coordinator, the
//   runtime streams it the ops that the coordinator's `coordinator.vv` lacks
//   (or the coordinator pulls what each `accept.vv` has beyond its own).
//   heartbeat_ack carries the follower's vv: the runtime may use it for lag.

export * from "./election/types.js";
export { REJECT_REASON_CHARS_MAX, parseElectionMsg, type ParsedElectionMsg } from "./election/wire.js";
export {
  REGION_MEMBERS_MAX,
  durableOf,
  epochOf,
  fencingToken,
  initElection,
  holdsLease,
  isActiveLeader,
  leaderOf,
  nextTimerMs,
  phaseOf,
  roleOf,
  step,
} from "./election/machine.js";
export { ABSTAIN_TIMEOUT_FACTOR, CATCH_UP_TIMEOUT_FACTOR } from "./election/transitions.js";
