// Client: a connection to the mqd daemon, which creates, names, permissions and recovers topics. The data path
// never goes through it: open() asks mqd for the topic (creating it if auto-create is on, checking the caller's
// rights) and then maps the segment in this process. The connection is this process's liveness: when it dies,
// mqd recovers its open claims and unacked records at once. The Client reconnects by itself after a daemon
// restart; topics already open keep working throughout. A request is sent again after a broken connection only
// when that is safe (daemon/PROTOCOL.md, "Retries"); otherwise its no_daemon error says it may have been carried out.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libmq/control.hpp"
#include "libmq/error.hpp"
#include "libmq/options.hpp"
#include "libmq/topic.hpp"

namespace mq {

// Where the daemon listens when nothing else is said.
inline constexpr std::string_view kDefaultSocket = "/run/mq/mqd.sock";

struct ClientOptions {
  // The daemon's socket. Default: empty = $MQ_SOCKET, else kDefaultSocket.
  std::string socket{};
  // How long one request may take. Default: 5 s. REQUIRES: > 0.
  std::chrono::milliseconds timeout{5000};
  // A name for this client in mqd's log lines about its connection (kafkajs clientId). Default: empty.
  std::string client_id{};
};

// Named fields of a raw request or reply (see libmq/control.hpp).
using Fields = std::vector<std::pair<std::string, std::string>>;

// Thread-safe. Moving is fine; a fork child must connect again.
class Client {
 public:
  // Errc::no_daemon (naming the socket) when mqd does not answer.
  static Result<Client> connect(const ClientOptions& options = {});
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Opens the topic through the daemon (created with the daemon's defaults when its auto-create is on, else
  // Errc::not_found). Errc::permission_denied naming the topic when this user may not use it.
  Result<Topic> open(std::string_view name);
  // Creates the topic (Errc::exists when it exists) and opens it.
  Result<Topic> create(std::string_view name, const CreateOptions& options = {});
  Result<void> remove(std::string_view name);
  // The dead-letter topic of `source` (TOPIC.dlq), which mqd creates with the source's access rights
  // (dead_letter_options) when it does not exist yet, opened. A Consumer of a topic opened through mqd asks this at
  // its first dead letter.
  Result<Topic> create_dead_letter(std::string_view source);
  // The topics mqd knows that this process's user may use, sorted (see daemon/PROTOCOL.md).
  Result<std::vector<std::string>> list();
  // A topic's settings, offsets, rates, stuck positions and groups.
  Result<TopicReport> describe(std::string_view name);
  Result<std::vector<GroupReport>> groups(std::string_view name);
  // mqd's own counts and every sound topic this process's user may use.
  Result<DaemonStats> stats();
  Result<void> create_group(std::string_view topic, std::string_view group, Start start = Start::earliest,
                           const RetryPolicy& retry = {}, Ordering ordering = Ordering::none);
  // Changes a group's retry policy (Topic::set_retry_policy).
  Result<void> set_retry_policy(std::string_view topic, std::string_view group, const RetryPolicy& retry);
  // Errc::busy while the group has live members.
  Result<void> delete_group(std::string_view topic, std::string_view group);
  // Moves the group; with a TimePoint, returns the offset that time meant.
  Result<std::optional<Offset>> reset_offsets(std::string_view topic, std::string_view group, ResetTarget to);
  // Kafka's DeleteRecords: drops the records before `before`; returns the topic's new earliest offset.
  Result<Offset> delete_records(std::string_view topic, Offset before);
  // Repairs the topic's orphaned positions now (see Topic::repair_orphans).
  Result<RepairReport> repair(std::string_view topic);
  // A raw request: its reply's fields, or its error. For tools that test the daemon's checks; the methods above
  // are the API.
  Result<Fields> request(std::string_view type, const Fields& fields);

  const std::string& socket_path() const;

 private:
  struct State;
  explicit Client(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace mq
