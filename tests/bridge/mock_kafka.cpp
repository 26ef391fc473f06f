// mock_kafka: librdkafka's mock cluster as a process of its own, and a plain client to fill and read it, for tests
// that run mq-kafka-bridge as a service (tests/systemd/bridge_boot_test.sh): the cluster and its records outlive the
// bridges that systemd kills and restarts, and the test reads Kafka without a Kafka install.
//   mock_kafka serve TOPIC[:PARTITIONS]...  a one-broker cluster on 127.0.0.1 holding these topics (partitions
//                                           default 1; librdkafka 2.0.2's mock has no CreateTopics, so they are made
//                                           here); prints "bootstrap HOST:PORT" and serves until SIGTERM or SIGINT
//   mock_kafka dump BOOTSTRAP TOPIC         prints the value of every record TOPIC holds, one per line (each
//                                           partition read from its beginning to its high watermark)
//   mock_kafka produce BOOTSTRAP TOPIC      writes one record per line of stdin (the line is its value, no key) and
//                                           exits once Kafka has confirmed them all
// Exit status: 0 done, 1 Kafka refused or did not answer within 30 s (a line on stderr says which), 2 bad usage.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr auto kTimeout = std::chrono::seconds(30);  // every wait on Kafka; more is a failure
constexpr int kTimeoutMs = static_cast<int>(std::chrono::milliseconds(kTimeout).count());

int fail(const std::string& what) {
  std::cerr << "mock_kafka: " << what << "\n";
  return 1;
}

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

using DeliveryReport = void (*)(rd_kafka_t*, const rd_kafka_message_t*, void*);

// A client handle of `type` with these properties (and a producer's delivery report callback), quiet below errors;
// nullptr after a line on stderr.
Handle make_handle(rd_kafka_type_t type, const std::vector<std::pair<std::string, std::string>>& properties,
                   DeliveryReport on_delivery = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (on_delivery != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  char text[512] = {};
  for (const auto& [k, v] : properties)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), text, sizeof text) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      fail("property " + k + "=" + v + ": " + text);
      return nullptr;
    }
  rd_kafka_conf_set(conf, "log_level", "3", text, sizeof text);
  rd_kafka_t* rk = rd_kafka_new(type, conf, text, sizeof text);  // takes conf when it succeeds
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    fail(std::string("cannot make a librdkafka handle: ") + text);
  }
  return Handle(rk);
}

int serve(const std::vector<std::string>& topics) {
  // Blocked before librdkafka starts its threads (they inherit the mask), so only sigwait below takes them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  const Handle owner = make_handle(RD_KAFKA_PRODUCER, {});  // the cluster lives in a handle; this one never produces
  if (!owner) return 1;
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(owner.get(), 1);
  if (cluster == nullptr) return fail("cannot make the mock cluster");
  for (const auto& spec : topics) {
    const auto colon = spec.find(':');
    const std::string name = spec.substr(0, colon);
    int partitions = 1;
    try {
      if (colon != std::string::npos) partitions = std::stoi(spec.substr(colon + 1));
    } catch (const std::exception&) {
      partitions = 0;
    }
    if (name.empty() || partitions < 1) {
      rd_kafka_mock_cluster_destroy(cluster);
      std::cerr << "mock_kafka: '" << spec << "' is not TOPIC or TOPIC:PARTITIONS (PARTITIONS >= 1)\n";
      return 2;
    }
    if (const auto err = rd_kafka_mock_topic_create(cluster, name.c_str(), partitions, 1); err) {
      rd_kafka_mock_cluster_destroy(cluster);
      return fail("cannot create topic " + name + ": " + rd_kafka_err2str(err));
    }
  }
  std::cout << "bootstrap " << rd_kafka_mock_cluster_bootstraps(cluster) << std::endl;  // flushed: a reader waits
  int signal = 0;
  sigwait(&stop, &signal);
  rd_kafka_mock_cluster_destroy(cluster);
  return 0;
}

int dump(const std::string& bootstrap, const std::string& topic) {
  const Handle rk = make_handle(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                                    {"group.id", "mock-kafka-dump"},  // assign() needs one; never joins
                                                    {"enable.auto.commit", "false"},
                                                    {"fetch.wait.max.ms", "10"}});  // the mock waits it out when empty
  if (!rk) return 1;
  rd_kafka_poll_set_consumer(rk.get());

  // The topic's partitions, from its metadata.
  rd_kafka_topic_t* handle = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  const auto err = rd_kafka_metadata(rk.get(), 0, handle, &metadata, kTimeoutMs);
  rd_kafka_topic_destroy(handle);
  if (err) return fail("metadata of topic " + topic + ": " + rd_kafka_err2str(err));
  std::vector<std::int32_t> partitions;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (metadata->topic_cnt == 1) {
    topic_err = metadata->topics[0].err;
    for (int i = 0; i < metadata->topics[0].partition_cnt; ++i)
      partitions.push_back(metadata->topics[0].partitions[i].id);
  }
  rd_kafka_metadata_destroy(metadata);
  if (topic_err) return fail("topic " + topic + ": " + rd_kafka_err2str(topic_err));

  // Each partition's end now; a partition is read once its next offset reaches it.
  std::map<std::int32_t, std::int64_t> end;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
  for (const auto p : partitions) {
    std::int64_t low = 0, high = 0;
    if (const auto e = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high, kTimeoutMs); e) {
      rd_kafka_topic_partition_list_destroy(list);
      return fail("watermarks of " + topic + "[" + std::to_string(p) + "]: " + rd_kafka_err2str(e));
    }
    if (high > low) {
      end[p] = high;
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = low;
    }
  }
  const auto assigned = rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  if (assigned) return fail(std::string("cannot assign the partitions: ") + rd_kafka_err2str(assigned));

  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!end.empty()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return fail("topic " + topic + ": " + std::to_string(end.size()) + " partitions not read to their end in 30 s");
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
    if (m == nullptr) continue;
    if (m->err) {
      const std::string why = rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      return fail("topic " + topic + ": " + why);
    }
    std::cout.write(static_cast<const char*>(m->payload), static_cast<std::streamsize>(m->len)) << '\n';
    if (const auto it = end.find(m->partition); it != end.end() && m->offset + 1 >= it->second) end.erase(it);
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk.get());
  return std::cout.flush() ? 0 : fail("cannot write the records");
}

// Counts the delivery reports that carry an error into the int each record points to (its opaque); prints the first.
void count_failure(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err && ++*static_cast<int*>(m->_private) == 1) std::cerr << "mock_kafka: " << rd_kafka_err2str(m->err) << "\n";
}

int produce(const std::string& bootstrap, const std::string& topic) {
  int failures = 0;
  const Handle rk =
      make_handle(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap}, {"linger.ms", "5"}}, count_failure);
  if (!rk) return 1;
  rd_kafka_topic_t* handle = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
  std::string line;
  std::size_t written = 0;
  while (std::getline(std::cin, line)) {
    for (;;) {
      const int sent = rd_kafka_produce(handle, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, line.data(), line.size(),
                                        nullptr, 0, &failures);
      if (sent == 0) break;
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_topic_destroy(handle);
        return fail("cannot produce to " + topic + ": " + rd_kafka_err2str(rd_kafka_last_error()));
      }
      rd_kafka_poll(rk.get(), 10);  // delivery reports make room
    }
    ++written;
  }
  rd_kafka_topic_destroy(handle);
  if (rd_kafka_flush(rk.get(), kTimeoutMs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return fail(std::to_string(rd_kafka_outq_len(rk.get())) + " of " + std::to_string(written) +
                " records not confirmed by Kafka in 30 s");
  return failures == 0 ? 0 : fail(std::to_string(failures) + " of " + std::to_string(written) + " records failed");
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 2 && args[0] == "serve") return serve({args.begin() + 1, args.end()});
  if (args.size() == 3 && args[0] == "dump") return dump(args[1], args[2]);
  if (args.size() == 3 && args[0] == "produce") return produce(args[1], args[2]);
  std::cerr << "usage: mock_kafka serve TOPIC[:PARTITIONS]... | dump BOOTSTRAP TOPIC | produce BOOTSTRAP TOPIC\n";
  return 2;
}
