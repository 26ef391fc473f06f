// The blog's "api", done properly: creating a user publishes an "invite" request to the `invitations` topic and
// returns at once; the e-mail service (email-worker.js) sends the e-mail later, in another process.
//
//   node api.js alice@example.com bob@example.com    # invite these and exit
//   node api.js                                      # HTTP: POST /users {"email": "..."} -> 201 at once
//                                                    #   (127.0.0.1:$PORT, default 3000)
// The mqd socket comes from $MQ_SOCKET (default /run/mq/mqd.sock).
const http = require("http");
const { Kafka } = require("libmq");

const kafka = new Kafka({ clientId: "api", brokers: ["localhost:9092"] });
const producer = kafka.producer();
const topic = "invitations";
let nextUser = 1;

// Creates the user (here: an id) and queues the invitation e-mail. Resolves as soon as the request is in the
// topic (microseconds), whatever the e-mail service is doing.
async function invite(email) {
  const user = { id: nextUser++, email, invitedAt: new Date().toISOString() };
  await producer.connect();
  const [meta] = await producer.send({
    topic,
    messages: [{ key: String(user.id), value: JSON.stringify(user), headers: { type: "invite" } }],
  });
  return { user, offset: meta.baseOffset };
}

async function main() {
  const emails = process.argv.slice(2);
  if (emails.length > 0) {
    for (const email of emails) {
      const started = process.hrtime.bigint();
      const { user, offset } = await invite(email);
      const us = Number(process.hrtime.bigint() - started) / 1000;
      console.log(`user ${user.id} <${email}> created, invitation queued at offset ${offset} in ${us.toFixed(0)} us`);
    }
    await producer.disconnect();
    return;
  }
  const port = Number(process.env.PORT || 3000);
  const server = http.createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/users") {
      res.writeHead(404).end();
      return;
    }
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", async () => {
      try {
        const { email } = JSON.parse(body);
        const { user, offset } = await invite(email);
        res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ ...user, offset }));
      } catch (e) {
        res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: e.message }));
      }
    });
  });
  server.listen(port, "127.0.0.1", () =>
    console.log(`api listening on http://127.0.0.1:${server.address().port} (POST /users)`));
  const stop = async () => {
    server.close();
    await producer.disconnect();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

module.exports = { invite, producer };

if (require.main === module) {
  main().catch((e) => {
    console.error(`api error - ${e.message}`);
    process.exit(1);
  });
}
