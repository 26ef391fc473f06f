'use strict';
// The baseline bench.js puts next to every libmq row: Node's own `net` over a Unix socket to a second process,
// doing the same work as the libmq case (each message framed as [u32 length][payload]; an awaited ack per message,
// or per batch; an async handler awaited per received message; an echo per round trip).
//
// serve(opts) is the server process (bench.js --role net-server): the first 8 bytes a client sends pick its mode:
//   'ack'     answers each frame with one byte          'batch'  answers each read's frames with their u16 count
//   'echo'    sends the last complete frame back         'stream' sends opts.messages frames, then ends
// The client drivers take the case context `c` of bench.js: they bump c.progress as they go (a case that stops
// moving fails) and register the socket with c.defer, so a failed case never leaves it open.
const net = require('net');

const MODE_BYTES = 8;
const now = () => process.hrtime.bigint();

function frame(payload) {
  const f = Buffer.alloc(4 + payload.length);
  f.writeUInt32LE(payload.length, 0);
  payload.copy(f, 4);
  return f;
}

// ---- the server process ---------------------------------------------------------------------------------------

function serve({ path: sockPath, messages, size }) {
  const server = net.createServer((sock) => {
    sock.on('error', () => {});  // clients hang up when done
    let head = Buffer.alloc(0);
    const first = (d) => {
      head = Buffer.concat([head, d]);
      if (head.length < MODE_BYTES) return;
      sock.off('data', first);
      const mode = head.subarray(0, MODE_BYTES).toString().trim();
      const rest = head.subarray(MODE_BYTES);
      if (mode === 'stream') return stream(sock, messages, size);
      const onData = reader(sock, mode);
      if (rest.length) onData(rest);
      sock.on('data', onData);
    };
    sock.on('data', first);
  });
  server.listen(sockPath, () => process.send('ready'));
  return server;
}

function stream(sock, messages, size) {
  const chunkFrames = 256;
  const chunk = Buffer.concat(Array(chunkFrames).fill(frame(Buffer.alloc(size, 7))));
  let sent = 0;
  const pump = () => {
    while (sent < messages) {
      const k = Math.min(chunkFrames, messages - sent);
      sent += k;
      if (!sock.write(k === chunkFrames ? chunk : chunk.subarray(0, k * (4 + size)))) return sock.once('drain', pump);
    }
    sock.end();
  };
  pump();
}

function reader(sock, mode) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let at = 0;
    let frames = 0;
    let last = null;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32LE(at);
      if (buf.length - at < 4 + len) break;
      last = buf.subarray(at, at + 4 + len);
      at += 4 + len;
      frames++;
    }
    buf = buf.subarray(at);
    if (mode === 'ack') sock.write(Buffer.alloc(frames, 'k'));
    else if (mode === 'batch' && frames) sock.write(Buffer.from([frames & 255, frames >> 8]));
    else if (mode === 'echo' && last) sock.write(Buffer.from(last));
  };
}

// ---- the client drivers ---------------------------------------------------------------------------------------

function connect(sockPath, mode, c) {
  return new Promise((resolve, reject) => {
    const s = net.connect(sockPath, () => {
      s.write(mode.padEnd(MODE_BYTES));
      resolve(s);
    });
    c.defer(() => s.destroy());
    s.once('error', reject);
  });
}

// A socket's one outstanding wait: wait(start) -> a promise settled by the data handler, or failed by an error or
// the peer hanging up.
function waiter(s) {
  let pending = null;
  const fail = (e) => {
    if (pending) pending.reject(e);
    pending = null;
  };
  s.on('error', fail);
  s.on('close', () => fail(new Error('the net server closed the connection')));
  return {
    wait(start) {
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        start();
      });
    },
    done() {
      const p = pending;
      pending = null;
      if (p) p.resolve();
    },
  };
}

// Like awaiting producer.send() per message: one frame, then wait for its ack.
async function awaitedSingle(sockPath, n, size, c) {
  const s = await connect(sockPath, 'ack', c);
  const f = frame(Buffer.alloc(size, 7));
  const w = waiter(s);
  let acks = 0;
  s.on('data', (d) => {
    acks += d.length;
    if (acks >= c.progress + 1) w.done();
  });
  const t0 = now();
  for (let i = 0; i < n; i++) {
    await w.wait(() => s.write(f));
    c.progress++;
  }
  return { count: n, t0 };
}

// Like send({messages}) with `batch` messages: the batch framed into one write, then wait for its ack.
async function batched(sockPath, n, size, batch, c) {
  const s = await connect(sockPath, 'batch', c);
  const msgs = Array.from({ length: batch }, () => ({ value: Buffer.alloc(size, 7) }));
  const encode = () => {
    let len = 0;
    for (const m of msgs) len += 4 + m.value.length;
    const out = Buffer.allocUnsafe(len);
    let at = 0;
    for (const m of msgs) {
      out.writeUInt32LE(m.value.length, at);
      m.value.copy(out, at + 4);
      at += 4 + m.value.length;
    }
    return out;
  };
  const w = waiter(s);
  let acked = 0;
  s.on('data', (d) => {
    for (let i = 0; i + 1 < d.length; i += 2) acked += d[i] | (d[i + 1] << 8);
    if (acked >= c.progress) w.done();
  });
  const t0 = now();
  for (let i = 0; i < n; i += batch) {
    const k = Math.min(batch, n - i);
    if (k < batch) msgs.length = k;
    await w.wait(() => {
      c.progress += k;
      s.write(encode());
    });
  }
  return { count: n, t0 };
}

// Like consumer.run({eachMessage}): each frame becomes a message object and the async handler is awaited before
// the next one; the socket is paused meanwhile.
async function consume(sockPath, n, c) {
  const s = await connect(sockPath, 'stream', c);
  const w = waiter(s);
  let buf = Buffer.alloc(0);
  let offset = 0;
  const eachMessage = async () => {
    c.progress++;
  };
  const t0 = now();
  await w.wait(() => {
    let busy = false;
    const drain = async () => {
      if (busy) return;
      busy = true;
      s.pause();
      let at = 0;
      while (buf.length - at >= 4) {
        const len = buf.readUInt32LE(at);
        if (buf.length - at < 4 + len) break;
        const value = buf.subarray(at + 4, at + 4 + len);
        at += 4 + len;
        await eachMessage({ topic: 't', partition: 0, message: { offset: String(offset++), value, key: null, headers: {} } });
      }
      buf = buf.subarray(at);
      busy = false;
      if (c.progress >= n) return w.done();
      s.resume();
    };
    s.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      drain();
    });
  });
  return { count: n, t0 };
}

// Round trips: one frame out, wait for its echo; `warmup` rounds first, not recorded. -> ns per round trip.
async function pingPong(sockPath, rounds, warmup, size, c) {
  const s = await connect(sockPath, 'echo', c);
  const f = frame(Buffer.alloc(size, 7));
  const w = waiter(s);
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    if (buf.length >= f.length) {
      buf = buf.subarray(f.length);
      w.done();
    }
  });
  const samples = [];
  for (let i = 0; i < warmup + rounds; i++) {
    const t0 = now();
    await w.wait(() => s.write(f));
    if (i >= warmup) samples.push(Number(now() - t0));
    c.progress++;
  }
  return { samples };
}

module.exports = { serve, awaitedSingle, batched, consume, pingPong };
