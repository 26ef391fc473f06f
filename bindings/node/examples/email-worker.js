// The e-mail service: a member of the consumer group "email-service". Start two (or more) processes: they SHARE
// the invitations (each record goes to one of them), and an invitation whose worker dies before finishing is
// redelivered to another. A record is acked only when eachMessage has resolved, i.e. after the e-mail went out.
//
//   node email-worker.js            # $EMAIL_MS: how long "sending" takes (default 200 ms)
const { Kafka } = require("libmq");

const kafka = new Kafka({ clientId: `email-worker-${process.pid}`, brokers: ["localhost:9092"] });
// maxInFlight 1: take one invitation at a time, so that idle workers get the next one (fair sharing of slow work).
const consumer = kafka.consumer({ groupId: "email-service", maxInFlight: 1 });
const sendMs = Number(process.env.EMAIL_MS || 200);

const sendEmail = (user) => new Promise((resolve) => setTimeout(resolve, sendMs));

async function main() {
  await consumer.connect();
  await consumer.subscribe({ topic: "invitations", fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const user = JSON.parse(message.value.toString());
      await sendEmail(user);
      console.log(`${message.offset} # worker ${process.pid} sent an invitation to ${user.email}`);
    },
  });
  console.log(`worker ${process.pid} ready`);
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
