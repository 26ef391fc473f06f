// The blog's consumer.js with only the require line changed ("kafkajs" -> "libmq").
// Run: MQ_SOCKET=/path/to/mqd.sock node consumer.js
const kafkajs = require("libmq");

const kafka = new kafkajs.Kafka({
  clientId: "my-app",
  brokers: ["localhost:9092"],
});

const topic = "kafka-node";
const consumer = kafka.consumer({ groupId: "test-group" });

const run = async () => {
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      console.log(`${message.offset} # ${message.value}`);
    },
  });
};

run().catch((e) => console.error(`consumer error - ${e.message}`, e));
