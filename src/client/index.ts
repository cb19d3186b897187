// The SDK's public surface: import from here, not from the files behind it,
// so those can be reshaped without breaking callers.

export { createClient } from "./client.js";
export type { ClientOptions, ConflictEntry, GeokvClient, JsonValue, KvEntry, KvPage, Version, WriteOptions, WriteResult } from "./client.js";
export { GeokvError, isGeokvError } from "./errors.js";
export type { GeokvErrorCode } from "./errors.js";
export type { AckLevel, StatusView } from "../api/types.js";
