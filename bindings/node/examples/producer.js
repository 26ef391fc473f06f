// The blog's producer.js with only the require line changed ("kafkajs" -> "libmq").
// Run: MQ_SOCKET=/path/to/mqd.sock node producer.js   (brokers are ignored; the topic is auto-created)
const kafkajs = require("libmq");

function* generate() {
  let count = 0;
  while (true) {
    yield `Hello consumer from producer: ${++count}`;
  }
}

const kafka = new kafkajs.Kafka({
  clientId: "my-app",
  brokers: ["localhost:9092"],
});

const producer = kafka.producer();
const generator = generate();

const produce = async () => {
  const topic = "kafka-node";
  const message = {
    value: generator.next().value,
  };

  try {
    await producer.connect();

    const res = await producer.send({
      topic,
      messages: [message],
    });

    console.log(res[0]);
  } catch (e) {
    console.error(`producer error - ${e.message}`, e);
  }
};

setInterval(produce, 2000);
