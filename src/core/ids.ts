// Branded identifiers. A NodeId and a RegionId are both strings on the wire,
// but mixing them up is a bug the type checker should catch, so each is parsed
// once at the edge (config, handshake, HTTP) and trusted inside.

/** A node's id, as named in its region file ("us-east-1"). */
export type NodeId = string & { readonly __brand: "NodeId" };
/** A region's name ("us-east"). */
export type RegionId = string & { readonly __brand: "RegionId" };

/** Ids are short, printable and safe in logs, metrics labels and file names. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** True when `s` is acceptable as a node or region id. */
export function isValidId(s: string): boolean {
  return ID_PATTERN.test(s);
}

/** Brands a string already validated with isValidId (or asserts). */
export function asNodeId(s: string): NodeId {
  if (!isValidId(s)) throw new Error(`invalid node id: ${JSON.stringify(s)}`);
  return s as NodeId;
}

/** Brands a string already validated with isValidId (or asserts). */
export function asRegionId(s: string): RegionId {
  if (!isValidId(s)) throw new Error(`invalid region id: ${JSON.stringify(s)}`);
  return s as RegionId;
}
