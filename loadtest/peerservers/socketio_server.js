// The Node.js peer: a Socket.IO server with the Redis adapter, relaying each room event to the room with a
// per-room `seq` and the server's `ts` (ms), as livecore stamps them.
//   node socketio_server.js <port> <redis-url>
const { createServer } = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const RELAYED = ["chat", "like", "gift", "auction", "moderation"];
const PING_INTERVAL_MS = 300000; // the load tester's senders do not answer pings; a run is shorter than this

async function main() {
  const [port, redisUrl] = [Number(process.argv[2]), process.argv[3]];
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer((req, res) => {
    if (req.url === "/healthz") res.end("ok");
  });
  const io = new Server(http, { adapter: createAdapter(pub, sub), pingInterval: PING_INTERVAL_MS });
  const seqs = new Map();
  io.on("connection", (socket) => {
    const room = socket.handshake.query.room || "room0";
    socket.join(room);
    for (const kind of RELAYED) {
      socket.on(kind, (data) => {
        const seq = (seqs.get(room) || 0) + 1;
        seqs.set(room, seq);
        io.to(room).emit(kind, { ...data, seq, ts: Date.now() });
      });
    }
  });
  http.listen(port, "127.0.0.1");
}

main();
