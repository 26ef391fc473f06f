// The e-mail service: a member of the consumer group "email-service". Start two (or more) processes: they SHARE
// the invitations (each record goes to one of them), and an invitation whose worker dies before finishing is
// redelivered to another. A record is acked only when eachMessage has resolved, i.e. after the e-mail went out.
//
// When sending fails, eachMessage throws and the group retries the invitation later (libmq nacks it): the mail
// server here is flaky -- it turns away the first attempt of one invitation in $MAIL_FLAKY (default 4, 0: never)
// with "421 try again later" -- and the retry, 200 ms later, goes through. An invitation that can never go out is
// tried 3 times (200 ms, then 400 ms apart), then parked in the dead-letter topic `invitations.dlq`: here, an address
// with a "+", which this worker's address check wrongly refuses. The fix: EMAIL_FIX=1 (the check accepts it);
// restart the workers with it, then `mqctl dlq replay invitations` puts the parked invitation back in the topic.
//
//   node email-worker.js            # $EMAIL_MS: how long "sending" takes (default 200 ms)
const { Kafka, logLevel } = require("libmq");

// logLevel ERROR: the worker says what failed itself; the consumer still logs an invitation it dead-letters.
const kafka = new Kafka({
  clientId: `email-worker-${process.pid}`, brokers: ["localhost:9092"], logLevel: logLevel.ERROR,
});
// maxInFlight 1: take one invitation at a time, so that idle workers get the next one (fair sharing of slow work).
// redelivery: the group's retry policy for an invitation whose eachMessage threw (the first member to join gives it
// to the group; one that asks for another policy changes it).
const redelivery = { maxAttempts: 3, backoffMs: 200, factor: 2 };
const consumer = kafka.consumer({ groupId: "email-service", maxInFlight: 1, redelivery });
const sendMs = Number(process.env.EMAIL_MS || 200);
const flakyEvery = Number(process.env.MAIL_FLAKY || 4);
const fixed = process.env.EMAIL_FIX === "1";

// The bug: "+" is a valid address character (RFC 5322), and the check before the fix refuses it.
const validAddress = (email) => (fixed ? /^[\w.+-]+@[\w.-]+$/ : /^[\w.-]+@[\w.-]+$/).test(email);

async function sendEmail(user, message) {
  if (!validAddress(user.email)) throw new Error(`550 invalid address <${user.email}>`);
  await new Promise((resolve) => setTimeout(resolve, sendMs));
  // The flaky mail server: deterministic, so the demo shows one retry per MAIL_FLAKY invitations.
  if (flakyEvery > 0 && user.id % flakyEvery === 0 && message.attempt === 1) throw new Error("421 try again later");
}

async function main() {
  await consumer.connect();
  await consumer.subscribe({ topic: "invitations", fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const user = JSON.parse(message.value.toString());
      const since = Date.now() - Number(message.firstFailureTimestamp);
      const tried = message.attempt > 1 ? ` (attempt ${message.attempt}, ${since} ms after the first failure)` : "";
      try {
        await sendEmail(user, message);
      } catch (e) {
        const last = message.attempt >= redelivery.maxAttempts;
        const next = last ? "parked in invitations.dlq" : "the group retries it later";
        const who = `${message.offset} # worker ${process.pid}`;
        console.log(`${who} could not send to ${user.email}${tried}: ${e.message}; ${next}`);
        throw e;  // nacks the record: retried after the backoff, dead-lettered after the last attempt
      }
      console.log(`${message.offset} # worker ${process.pid} sent an invitation to ${user.email}${tried}`);
    },
  });
  console.log(`worker ${process.pid} ready${fixed ? " (with the address fix)" : ""}`);
  const stop = async () => {
    await consumer.disconnect();  // finishes the e-mail in progress, hands the rest back to the group
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((e) => {
  console.error(`email worker error - ${e.message}`);
  process.exit(1);
});
