// Client: a connection to the mqd daemon, which creates, names, permissions and recovers topics. The data path
// never goes through it: open() asks mqd for the topic (creating it if auto-create is on, checking the caller's
// rights) and then maps the segment in this process. The connection is this process's liveness: when it dies,
// mqd recovers its open claims and unacked records at once. The Client reconnects by itself after a daemon
// restart; topics already open keep working throughout.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// What to create; an unset field takes the daemon's default.
struct CreateOptions {
  std::optional<std::size_t> capacity{};
  std::optional<std::size_t> max_message{};
  std::optional<Policy> policy{};
  std::optional<std::chrono::milliseconds> block_timeout{};
  std::optional<Storage> storage{};
  std::optional<std::uint32_t> mode{};
  std::optional<std::string> access_group{};  // the Unix group that may use the topic
  std::vector<std::string> groups{};          // consumer groups created with the topic
};

// Named fields of a raw request or reply (see libmq/src/control/frame.hpp).
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
  Result<Topic> create(std::string_view name, const CreateOptions& options = {});
  Result<void> remove(std::string_view name);
  Result<std::vector<std::string>> list();
  // Any request the daemon understands (mqctl uses this); the reply's fields, or its error.
  Result<Fields> request(std::string_view type, const Fields& fields);

  const std::string& socket_path() const;

 private:
  struct State;
  explicit Client(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace mq
