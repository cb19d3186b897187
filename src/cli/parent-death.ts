// The parent-death check of a node that `geokv up` started, so that no node
// outlives it, even when it is SIGKILLed and cannot stop its children.
//
// `geokv up` spawns its nodes with an IPC channel and sends nothing on it.
// When the parent dies, however it dies, the kernel closes its end and the
// child's channel emits "disconnect" at once: no polling, and it works
// wherever Node's IPC does. (Polling process.ppid also works on Linux, but
// would need the parent's pid passed in to be safe against a parent that died
// before the first poll, and is late by up to its period.) A node started any
// other way has no channel, and this check does nothing.

/**
 * Starts watching now, before the node's slow start-up, so a death during it
 * is not missed; the returned function names what to do about it, and calls
 * it at once if the parent is already gone.
 */
export function watchParentDeath(): (onDeath: () => void) => void {
  let gone = false;
  let act: (() => void) | undefined;
  const channel = process.channel;
  if (channel) {
    // The channel must not keep a node that is shutting down alive.
    channel.unref();
    process.once("disconnect", () => {
      gone = true;
      act?.();
    });
  }
  return (onDeath) => {
    act = onDeath;
    if (gone) onDeath();
  };
}
