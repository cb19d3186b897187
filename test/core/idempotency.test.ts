// First-answer idempotency as pure decisions (src/core/apply/idempotency.ts):
// a key that cannot travel in an op is refused, a write under way is waited
// for, a recorded answer is replayed to the same request only.

import { describe, expect, it } from "vitest";
import { firstAnswerRecord, isIdempotencyMismatch, replayOf, startIdempotent } from "../../src/core/apply/idempotency.js";
import type { IdempotencyRecord } from "../../src/core/apply/types.js";
import { asNodeId } from "../../src/core/ids.js";
import { makeCounterOp } from "../../src/core/write.js";

const rec: IdempotencyRecord = { key: "K", requestHash: "h", status: 200, body: JSON.stringify({ key: "c", value: 1, token: "a:3" }), createdAtMs: 7 };

describe("idempotency decisions", () => {
  it("refuses a key or hash past the op bounds before anything else", () => {
    expect(startIdempotent({ key: "k".repeat(257), requestHash: "h" }, true, rec)).toMatchObject({ kind: "refuse" });
    expect(startIdempotent({ key: "K", requestHash: "" }, false, undefined)).toMatchObject({ kind: "refuse" });
  });

  it("waits for a write under way, then replays a record, else is the first", () => {
    expect(startIdempotent({ key: "K", requestHash: "h" }, true, rec)).toEqual({ kind: "await_first" });
    expect(startIdempotent({ key: "K", requestHash: "h" }, false, rec)).toEqual({ kind: "replay", record: rec });
    expect(startIdempotent({ key: "K", requestHash: "h" }, false, undefined)).toEqual({ kind: "first" });
  });

  it("replays the recorded answer to the same request and refuses a different one", () => {
    expect(replayOf(rec, "h")).toEqual({ body: { key: "c", value: 1, token: "a:3" }, token: "a:3", dot: { origin: "a", seq: 3 } });
    expect(isIdempotencyMismatch(replayOf(rec, "other"))).toBe(true);
  });

  it("records an answer only for an op with a key nobody answered yet, stamped with the origin's clock", () => {
    const op = makeCounterOp(undefined, "c", 1, asNodeId("a"), 3, { wallMs: 9, logical: 2 });
    expect(firstAnswerRecord(op, { token: "a:3" }, false)).toBeUndefined();
    const withKey = { ...op, idem: { key: "K", requestHash: "h" } };
    expect(firstAnswerRecord(withKey, { token: "a:3" }, true)).toBeUndefined();
    expect(firstAnswerRecord(withKey, { token: "a:3" }, false)).toEqual({ key: "K", requestHash: "h", status: 200, body: '{"token":"a:3"}', createdAtMs: 9 });
  });
});
