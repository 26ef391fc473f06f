// mq::Client: requests to mqd over its Unix socket, and a monitor thread that notices the daemon going away and
// reconnects (re-registering this process and the topics it opened) without disturbing the data path.
#include "libmq/client.hpp"

#include "libmq/consumer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>


namespace mq {

namespace {

using Clock = std::chrono::steady_clock;

Error no_daemon(const std::string& path, const std::string& why) {
  return Error(Errc::no_daemon, "cannot reach mqd at " + path + ": " + why +
                                    " (is mqd running? set MQ_SOCKET or ClientOptions::socket)");
}

Result<int> dial(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return no_daemon(path, "socket path too long");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return no_daemon(path, std::strerror(errno));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == EACCES)
      return Error(Errc::permission_denied, "no permission on mqd's socket " + path +
                                                " (its users are the members of mqd's access group, mq by default)");
    return no_daemon(path, std::strerror(e));
  }
  return fd;
}

// Waits for `events` on fd until the deadline. False on timeout or error.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();  // never early
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// Where a round trip broke, which says whether sending the request again is safe. Every kind but `no` leaves the
// connection unusable: the caller drops it.
enum class Broke {
  no,         // it did not (or failed for another reason: an error from mqd)
  unsent,     // the connection was gone before mqd could read the whole request: it was not carried out
  unanswered, // the connection was lost after the request was sent: mqd may have carried it out
  timed_out,  // no reply in time: mqd may still carry it out
  garbled,    // the reply was not a frame (a bad length prefix or body): the stream is out of step, and mqd may
              // have carried the request out
};

// A reply that is not a well-formed frame, said as such (the frame codec's error says what was wrong).
Error garbled_reply(const std::string& path, const Error& why, Broke& broke) {
  broke = Broke::garbled;
  return Error(why.code(), "mqd at " + path + " sent a reply that is not a control frame (" +
                               std::string(why.message()) + "); its connection was dropped");
}

Result<void> write_all(int fd, const std::string& bytes, Clock::time_point deadline, const std::string& path,
                       Broke& broke) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_fd(fd, POLLOUT, deadline)) {
        broke = Broke::timed_out;
        return no_daemon(path, "request timed out");
      }
      continue;
    }
    broke = Broke::unsent;
    return no_daemon(path, std::string("connection lost: ") + std::strerror(errno));
  }
  return {};
}

Result<void> read_exact(int fd, std::byte* out, std::size_t n, Clock::time_point deadline, const std::string& path,
                        Broke& broke) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::recv(fd, out + done, n - done, MSG_DONTWAIT);
    if (r > 0) {
      done += static_cast<std::size_t>(r);
      continue;
    }
    if (r == 0) {
      broke = Broke::unanswered;
      return no_daemon(path, "connection closed by mqd");
    }
    if (errno == EAGAIN || errno == EINTR) {
      if (!wait_fd(fd, POLLIN, deadline)) {
        broke = Broke::timed_out;
        return no_daemon(path, "no reply within the timeout");
      }
      continue;
    }
    broke = Broke::unanswered;
    return no_daemon(path, std::string("connection lost: ") + std::strerror(errno));
  }
  return {};
}

Result<control::Frame> roundtrip(int fd, const control::Frame& request, std::chrono::milliseconds timeout,
                                 const std::string& path, Broke& broke) {
  broke = Broke::no;
  auto bytes = control::encode(request);
  if (!bytes) return std::move(bytes).error();
  const auto deadline = Clock::now() + timeout;
  if (auto w = write_all(fd, *bytes, deadline, path, broke); !w) return w.error();
  std::array<std::byte, 4> prefix{};
  if (auto r = read_exact(fd, prefix.data(), 4, deadline, path, broke); !r) return r.error();
  auto len = control::body_length(prefix, control::kReplyLimits);
  if (!len) return garbled_reply(path, len.error(), broke);  // what follows cannot be told from the next reply
  std::string body(*len, '\0');
  if (auto r = read_exact(fd, reinterpret_cast<std::byte*>(body.data()), *len, deadline, path, broke); !r)
    return r.error();
  auto reply = control::decode(std::as_bytes(std::span(body.data(), body.size())), control::kReplyLimits);
  if (!reply) return garbled_reply(path, reply.error(), broke);
  return control::check_reply(std::move(*reply));
}

}  // namespace

struct Client::State {
  std::string path;
  ClientOptions options;
  std::mutex mu;                 // guards fd, generation and topics; one request at a time
  int fd = -1;
  // Counts every dial and drop, so the monitor can tell whether the connection it watched is still the current
  // one: fd numbers cannot, because a new connection usually gets the number of the one just closed.
  std::uint64_t generation = 0;
  std::vector<std::string> topics;  // opened through this client: re-registered after a reconnect
  int wake = -1;                 // eventfd: tells the monitor to stop
  std::thread monitor;

  ~State() {
    if (wake >= 0) {
      const std::uint64_t one = 1;
      (void)!::write(wake, &one, sizeof one);
    }
    if (monitor.joinable()) monitor.join();
    if (fd >= 0) ::close(fd);
    if (wake >= 0) ::close(wake);
  }

  // The hellos that register this process (again, after mqd restarted): its topics spread over as many frames as
  // the request limits need (a process may have opened thousands). mqd keeps 255 bytes of the client id.
  std::vector<control::Frame> hellos() const {
    constexpr std::size_t kFieldBytes = 6 + sizeof "topic";  // a field's lengths and key, besides its value
    constexpr std::size_t kBudget = control::kMaxFrame - 1024;  // what pid, client_id and the header leave
    std::vector<control::Frame> out;
    control::Hello h{.pid = static_cast<std::uint64_t>(::getpid())};
    if (!options.client_id.empty()) h.client_id = options.client_id.substr(0, 255);
    std::size_t bytes = 0;
    for (const auto& t : topics) {
      if (h.topics.size() + 8 >= control::kMaxFields || bytes + kFieldBytes + t.size() > kBudget) {
        out.push_back(control::to_frame(h));
        h.topics.clear();
        bytes = 0;
      }
      h.topics.push_back(t);
      bytes += kFieldBytes + t.size();
    }
    out.push_back(control::to_frame(h));
    return out;
  }

  // Ends the connection. shutdown first: the monitor may be polling it, and a close alone neither wakes its poll
  // nor ends the connection while the poll holds it. REQUIRES: mu held.
  void drop() {
    if (fd < 0) return;
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    fd = -1;
    ++generation;
  }

  // REQUIRES: mu held, by `held` (checked in debug builds).
  Result<void> reconnect(const std::unique_lock<std::mutex>& held) {
    assert(held.owns_lock() && held.mutex() == &mu);
    (void)held;
    drop();
    auto dialed = dial(path);
    if (!dialed) return dialed.error();
    fd = *dialed;
    ++generation;
    for (const auto& hello : hellos()) {
      Broke broke;
      if (auto reply = roundtrip(fd, hello, options.timeout, path, broke); !reply) {
        drop();
        return reply.error();
      }
    }
    return {};
  }

  // Sends the request, once more on a new connection if the old one broke (mqd restarted) and sending it again is
  // safe: when it never reached mqd, or its type is idempotent. A request that timed out or got a garbled reply is
  // not sent again. Every attempt that broke drops its connection (a late reply, or the rest of a garbled one, must
  // not be read as the next request's).
  Result<control::Frame> call(const control::Frame& request) {
    std::unique_lock lock(mu);
    for (bool first = true;; first = false) {
      if (fd < 0)
        if (auto r = reconnect(lock); !r) return r.error();
      Broke broke;
      auto reply = roundtrip(fd, request, options.timeout, path, broke);
      if (broke == Broke::no) return reply;
      drop();
      const bool safe = broke == Broke::unsent || (broke == Broke::unanswered && control::idempotent(request.type));
      if (first && safe) continue;
      if (broke == Broke::unsent) return reply;  // it never reached mqd: nothing to doubt
      // A garbled reply keeps the codec's code (a bad frame, another protocol version); the rest: mqd is not there.
      const Errc code = broke == Broke::garbled ? reply.error().code() : Errc::no_daemon;
      return Error(code, std::string(reply.error().message()) + ": the " + request.type.substr(0, 64) +
                             " request may or may not have been carried out");
    }
  }

  // A typed request and its typed reply.
  template <class R>
  Result<typename R::Reply> ask(const R& request);
  // Maps the topic where mqd said it lies, and registers it for re-registration after a reconnect.
  Result<Topic> map(std::string_view name, const control::Opened& where);

  // Watches the connection; when mqd goes away, reconnects with backoff until it is back or we stop. It polls a
  // duplicate of the connection's descriptor, its own: a request may drop the connection meanwhile, and the number
  // could then name an unrelated file. drop()'s shutdown ends the socket behind both descriptors, so the poll wakes.
  // The generation says whether the connection it saw end is still the current one (else a request has already
  // replaced it, and the new one is healthy).
  void watch() {
    auto delay = std::chrono::milliseconds(50);
    for (;;) {
      std::uint64_t seen;
      bool connected;
      int watched = -1;
      {
        std::lock_guard lock(mu);
        seen = generation;
        connected = fd >= 0;
        if (connected) watched = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);  // -1 when out of descriptors: look again later
      }
      pollfd p[2] = {{wake, POLLIN, 0}, {watched, POLLRDHUP, 0}};
      const int r = ::poll(p, watched >= 0 ? 2 : 1, watched >= 0 ? -1 : static_cast<int>(delay.count()));
      const bool failed = r < 0 && errno != EINTR;  // read before close() may change errno
      const bool ended = watched >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
      if (watched >= 0) ::close(watched);
      if (failed) return;
      if (p[0].revents != 0) return;
      if (connected && !ended) continue;
      std::unique_lock lock(mu);
      if (generation != seen) continue;  // dialed or dropped since: look at what is there now
      if (reconnect(lock)) {
        delay = std::chrono::milliseconds(50);
      } else {
        delay = std::min(delay * 2, std::chrono::milliseconds(1000));
      }
    }
  }
};

Client::Client(std::shared_ptr<State> state) : state_(std::move(state)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::connect(const ClientOptions& options) {
  if (options.timeout.count() <= 0) return Error(Errc::invalid_argument, "client timeout must be positive");
  auto state = std::make_shared<State>();
  state->options = options;
  state->path = options.socket;
  if (state->path.empty()) {
    const char* env = std::getenv("MQ_SOCKET");
    state->path = env != nullptr && *env != '\0' ? env : std::string(kDefaultSocket);
  }
  {
    std::unique_lock lock(state->mu);
    if (auto r = state->reconnect(lock); !r) return r.error();
  }
  state->wake = ::eventfd(0, EFD_CLOEXEC);
  if (state->wake < 0) return Error(Errc::io, std::string("eventfd: ") + std::strerror(errno));
  state->monitor = std::thread([s = state.get()] { s->watch(); });
  return Client(std::move(state));
}

const std::string& Client::socket_path() const { return state_->path; }

Result<Fields> Client::request(std::string_view type, const Fields& fields) {
  control::Frame f{std::string(type)};
  f.fields = fields;
  auto reply = state_->call(f);
  if (!reply) return std::move(reply).error();
  return std::move(reply->fields);
}

template <class R>
Result<typename R::Reply> Client::State::ask(const R& request) {
  auto reply = call(control::to_frame(request));
  if (!reply) return std::move(reply).error();
  return control::reply_from<typename R::Reply>(*reply);
}

Result<Topic> Client::State::map(std::string_view name, const control::Opened& where) {
  auto topic = Topic::open(name, OpenOptions{where.storage, where.directory, where.ns});
  if (!topic) return topic;
  topic->daemon_socket_ = path;
  std::lock_guard lock(mu);
  if (std::find(topics.begin(), topics.end(), name) == topics.end()) topics.emplace_back(name);
  return topic;
}

Result<Topic> Client::open(std::string_view name) {
  if (auto valid = validate_topic_name(name); !valid) return valid.error();
  auto opened = state_->ask(control::Open{std::string(name)});
  if (!opened) return std::move(opened).error();
  return state_->map(name, *opened);
}

Result<Topic> Client::create(std::string_view name, const CreateOptions& options) {
  if (auto valid = validate_topic_name(name); !valid) return valid.error();
  auto opened = state_->ask(control::Create{std::string(name), options});
  if (!opened) return std::move(opened).error();
  return state_->map(name, *opened);
}

Result<Topic> Client::create_dead_letter(std::string_view source) {
  if (auto valid = validate_topic_name(source); !valid) return valid.error();
  auto opened = state_->ask(control::CreateDeadLetter{std::string(source)});
  if (!opened) return std::move(opened).error();
  return state_->map(std::string(source) + std::string(kDeadLetterSuffix), *opened);
}

Result<void> Client::remove(std::string_view name) {
  auto done = state_->ask(control::Delete{std::string(name)});
  if (!done) return std::move(done).error();
  return {};
}

Result<std::vector<std::string>> Client::list() {
  auto names = state_->ask(control::List{});
  if (!names) return std::move(names).error();
  return std::move(names->topics);
}

Result<TopicReport> Client::describe(std::string_view name) { return state_->ask(control::Describe{std::string(name)}); }

Result<std::vector<GroupReport>> Client::groups(std::string_view name) {
  auto list = state_->ask(control::Groups{std::string(name)});
  if (!list) return std::move(list).error();
  return std::move(list->groups);
}

Result<DaemonStats> Client::stats() { return state_->ask(control::Stats{}); }

Result<void> Client::create_group(std::string_view topic, std::string_view group, Start start,
                                  const RetryPolicy& retry, Ordering ordering) {
  auto done = state_->ask(control::CreateGroup::of(std::string(topic), std::string(group), start, retry, ordering));
  if (!done) return std::move(done).error();
  return {};
}

Result<void> Client::set_retry_policy(std::string_view topic, std::string_view group, const RetryPolicy& retry) {
  auto done = state_->ask(control::SetRetry{std::string(topic), std::string(group), RetryFields::of(retry)});
  if (!done) return std::move(done).error();
  return {};
}

Result<void> Client::delete_group(std::string_view topic, std::string_view group) {
  auto done = state_->ask(control::DeleteGroup{std::string(topic), std::string(group)});
  if (!done) return std::move(done).error();
  return {};
}

Result<std::optional<Offset>> Client::reset_offsets(std::string_view topic, std::string_view group, ResetTarget to) {
  auto done = state_->ask(control::ResetOffsets{std::string(topic), std::string(group), to});
  if (!done) return std::move(done).error();
  return done->offset;
}

Result<Offset> Client::delete_records(std::string_view topic, Offset before) {
  auto deleted = state_->ask(control::DeleteRecords{std::string(topic), before});
  if (!deleted) return std::move(deleted).error();
  return deleted->earliest;
}

Result<RepairReport> Client::repair(std::string_view topic) { return state_->ask(control::Repair{std::string(topic)}); }

}  // namespace mq
