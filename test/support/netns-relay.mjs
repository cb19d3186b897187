// The partition tests' way into the cluster (test/support/netns.ts): the test
// process lives in the root network namespace, which has no route to the
// nodes (nothing is added there), and Node cannot enter another namespace.
// This relay runs inside the "client" namespace (`ip netns exec <ns> node
// netns-relay.mjs DIR NAME=HOST:PORT...`) and listens on one unix socket per
// node, DIR/NAME.sock: sockets are filesystem objects, so the test reaches
// them from any namespace. Each accepted stream is piped byte for byte to the
// node's TCP address; the relay understands no HTTP and changes nothing.
// It prints "ready" once every socket listens and exits when stdin closes,
// so it never outlives the test process that started it.

import { createConnection, createServer } from "node:net";
import { join } from "node:path";

const [dir, ...targets] = process.argv.slice(2);
if (dir === undefined || targets.length === 0) {
  process.stderr.write("usage: netns-relay.mjs DIR NAME=HOST:PORT...\n");
  process.exit(2);
}

let listening = 0;
for (const target of targets) {
  const [name, address] = target.split("=");
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at);
  const port = Number(address.slice(at + 1));
  const server = createServer((client) => {
    const upstream = createConnection({ host, port });
    client.pipe(upstream).pipe(client);
    // Either side failing (a node killed, a stopped one reset) ends both.
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  server.listen(join(dir, `${name}.sock`), () => {
    listening += 1;
    if (listening === targets.length) process.stdout.write("ready\n");
  });
}

process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
