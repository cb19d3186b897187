// Which of a region's nodes the SDK asks first. Any node serves reads and
// forwards writes to the leader, so the choice only saves hops and dead ends:
// writes go to the leader when we have seen it answer (learnt from the
// X-Geokv-Node and X-Geokv-Leader headers; while the leader's URL is unknown,
// to a URL that has not yet said who it is), everything else to the node that
// answered last; a node that just failed is skipped until it answers again.

/** What the SDK has learnt about the nodes it was given. */
export class NodeSet {
  readonly urls: readonly string[];
  /** Node id per URL index, learnt from X-Geokv-Node. */
  private readonly ids: (string | null)[];
  /** Set when a URL failed to answer; cleared when it answers again. */
  private readonly failed: boolean[];
  private preferred = 0;
  private leaderId: string | null = null;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new Error("createClient needs at least one node URL");
    this.urls = urls;
    this.ids = urls.map(() => null);
    this.failed = urls.map(() => false);
  }

  /** The URL index a call starts at. */
  first(isWrite: boolean): number {
    if (isWrite && this.leaderId !== null) {
      const i = this.ids.indexOf(this.leaderId);
      if (i >= 0 && !this.failed[i]) return i;
      // The leader's URL is not known yet: a URL that has not said who it is
      // may be it, and costs nothing if not (a follower forwards the write).
      if (i < 0) {
        const unknown = this.ids.findIndex((id, k) => id === null && !this.failed[k]);
        if (unknown >= 0) return unknown;
      }
    }
    // The preferred node, or the first after it that has not just failed.
    for (let k = 0; k < this.urls.length; k++) {
      const i = (this.preferred + k) % this.urls.length;
      if (!this.failed[i]) return i;
    }
    return this.preferred;
  }

  /** The URL index to try after `i` failed: the next one round the list. */
  next(i: number): number {
    return (i + 1) % this.urls.length;
  }

  /** The node id behind URL index `i`, when it has told us. */
  idOf(i: number): string | null {
    return this.ids[i] ?? null;
  }

  /** The region leader as last named by a node; null when unknown. */
  leader(): string | null {
    return this.leaderId;
  }

  /**
   * Records an HTTP answer from URL index `i`. `usable` means the node served
   * the request (not a retryable refusal), so it becomes the preferred node.
   * A write served without X-Geokv-Leader was taken by the node itself, so it
   * is the leader.
   */
  answered(i: number, headers: Headers, o: { usable: boolean; wroteLocally: boolean }): void {
    this.failed[i] = false;
    const node = headers.get("x-geokv-node");
    if (node !== null && node !== "") this.ids[i] = node;
    const leader = headers.get("x-geokv-leader");
    if (leader !== null && leader !== "") this.leaderId = leader;
    else if (o.wroteLocally && node !== null && node !== "") this.leaderId = node;
    if (o.usable) this.preferred = i;
  }

  /** Records that URL index `i` did not answer (refused, reset, timed out). */
  unreachable(i: number): void {
    this.failed[i] = true;
  }
}
