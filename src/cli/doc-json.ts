// What `geokv doc get` shows of a Yjs document: the server sends the whole
// doc as one Yjs update, which says which top-level types exist but not what
// kind each is (an application chose Y.Text or Y.Map when it wrote). So the
// kind is read from the type's content, then the type is read as that kind.

import * as Y from "yjs";

/** Any value a shared type renders to. */
export type DocContent = Record<string, unknown>;

type Kind = "text" | "xml" | "array" | "map" | "empty";
/** A top-level type as Y.applyUpdate leaves it: of no kind until read as one. */
type SharedType = Y.Doc["share"] extends Map<string, infer T> ? T : never;

/** The kind of a top-level type, from its first live items and its map entries. */
function kindOf(t: SharedType): Kind {
  for (let item = t._start; item !== null; item = item.right) {
    if (item.deleted) continue;
    const c = item.content;
    if (c instanceof Y.ContentString || c instanceof Y.ContentFormat || c instanceof Y.ContentEmbed) return "text";
    if (c instanceof Y.ContentType && (c.type instanceof Y.XmlElement || c.type instanceof Y.XmlText || c.type instanceof Y.XmlHook)) return "xml";
    return "array";
  }
  for (const item of t._map.values()) if (!item.deleted) return "map";
  return "empty";
}

/** Each top-level type of the doc `update` by name, as JSON: text as a string, maps as objects, arrays as arrays, XML as its string form. */
export function docContent(update: Uint8Array): DocContent {
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, update);
    const out: DocContent = {};
    for (const [name, type] of [...doc.share].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const kind = kindOf(type);
      switch (kind) {
        case "text":
          out[name] = doc.getText(name).toString();
          break;
        case "xml":
          out[name] = doc.getXmlFragment(name).toString();
          break;
        case "array":
          out[name] = doc.getArray(name).toJSON();
          break;
        case "map":
          out[name] = doc.getMap(name).toJSON();
          break;
        case "empty":
          // Everything in it was deleted: no kind to read it as.
          out[name] = null;
          break;
        default: {
          const never: never = kind;
          throw new Error(`unhandled kind ${String(never)}`);
        }
      }
    }
    return out;
  } finally {
    doc.destroy();
  }
}
