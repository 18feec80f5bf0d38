// The reference Node tus server for bench/upload.py: @tus/server with @tus/file-store, as its
// README sets it up. It neither hashes nor fsyncs what it stores.
//   node bench/tus-node/server.mjs <port> <directory>
import http from "node:http";
import { Server } from "@tus/server";
import { FileStore } from "@tus/file-store";

const [port, directory] = process.argv.slice(2);
const tus = new Server({ path: "/files", datastore: new FileStore({ directory }) });
http.createServer((req, res) => tus.handle(req, res)).listen(Number(port), "127.0.0.1", () => {
  console.error(`Running on http://127.0.0.1:${port}`);
});
