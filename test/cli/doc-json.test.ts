// `geokv doc get` prints a doc's shared types by name; the kind of each is
// read from its content, since a Yjs update does not name it.

import * as Y from "yjs";
import { describe, expect, it } from "vitest";
import { docContent } from "../../src/cli/doc-json.js";

describe("docContent", () => {
  it("renders text, maps, arrays and XML by name", () => {
    const doc = new Y.Doc();
    doc.getText("title").insert(0, "hello world");
    doc.getMap("meta").set("n", 1);
    doc.getMap("meta").set("tags", ["a"]);
    doc.getArray("list").push([1, "two", { three: 3 }]);
    const p = new Y.XmlElement("p");
    p.insert(0, [new Y.XmlText("hi")]);
    doc.getXmlFragment("body").insert(0, [p]);
    expect(docContent(Y.encodeStateAsUpdate(doc))).toEqual({
      body: "<p>hi</p>",
      list: [1, "two", { three: 3 }],
      meta: { n: 1, tags: ["a"] },
      title: "hello world",
    });
  });

  it("an empty doc is {}; a type whose content was all deleted is null", () => {
    expect(docContent(Y.encodeStateAsUpdate(new Y.Doc()))).toEqual({});
    const doc = new Y.Doc();
    doc.getText("gone").insert(0, "x");
    doc.getText("gone").delete(0, 1);
    doc.getText("kept").insert(0, "y");
    expect(docContent(Y.encodeStateAsUpdate(doc))).toEqual({ gone: null, kept: "y" });
  });
});
