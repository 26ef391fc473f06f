// Control connections (see server.hpp and ../PROTOCOL.md).
#include "server.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>

#include "log.hpp"
#include "peer.hpp"

namespace mqd {

namespace asio = boost::asio;
using mq::Errc;
using mq::Error;
using mq::control::Frame;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server& server, asio::local::stream_protocol::socket socket, Peer peer)
      : server_(server), socket_(std::move(socket)), deadline_(socket_.get_executor()), peer_(std::move(peer)) {}

  void start() { read_prefix(); }
  void close() {
    boost::system::error_code ignored;
    deadline_.cancel();
    socket_.close(ignored);
  }
  const std::set<std::string>& topics() const { return topics_; }
  const Peer& peer() const { return peer_; }

  // The peer as log lines name it: its credentials and, once its hello gave one, its client id (kafkajs clientId),
  // printable ASCII only.
  std::string who() const {
    if (client_id_.empty()) return peer_.describe();
    std::string id = client_id_;
    for (char& c : id)
      if (c < 0x20 || c > 0x7e) c = '?';
    return peer_.describe() + " client_id=" + id;
  }

 private:
  void read_prefix() {
    asio::async_read(socket_, asio::buffer(prefix_), [self = shared_from_this()](auto ec, std::size_t) {
      if (ec) return self->server_.closed(self);
      auto len = mq::control::body_length(std::span<const std::byte, 4>(self->prefix_));
      if (!len) return self->fail(len.error());
      self->body_.resize(*len);
      self->start_deadline();
      self->read_body();
    });
  }

  void read_body() {
    asio::async_read(socket_, asio::buffer(body_), [self = shared_from_this()](auto ec, std::size_t) {
      self->deadline_.cancel();
      if (ec) return self->server_.closed(self);
      auto request = mq::control::decode(self->body_);
      if (!request) return self->fail(request.error());
      self->answer(self->handle(*request), true);
    });
  }

  // A frame whose length has been read must arrive whole within --frame-timeout: a client that stalls half-way
  // holds a buffer of up to 64 KiB, so it is hung up on.
  void start_deadline() {
    const auto limit = server_.registry_.config().frame_timeout;
    deadline_.expires_after(limit);
    deadline_.async_wait([self = shared_from_this(), limit](boost::system::error_code ec) {
      if (ec) return;  // the body arrived (or the connection closed) first
      log(LogLevel::warn, "closing control connection of " + self->who() + ": its request frame did not arrive whole within " +
                              std::to_string(limit.count()) + " ms");
      boost::system::error_code ignored;
      self->socket_.close(ignored);  // the pending read ends with an error, which ends the session
    });
  }

  // A broken frame: say why, then hang up (the stream cannot be resynchronized).
  void fail(const Error& error) {
    log(LogLevel::warn, "closing control connection of " + who() + ": " + std::string(error.message()));
    answer(mq::control::error_reply(error), false);
  }

  void answer(const Frame& reply, bool keep_going) {
    auto bytes = mq::control::encode(reply, mq::control::kReplyLimits);
    if (!bytes) {
      // The request was sound; its answer (stats of thousands of topics) is past what one frame can carry.
      const Error error(Errc::limit, "mqd's reply does not fit in one control frame (" +
                                         std::string(bytes.error().message()) + "); ask about one topic (describe)");
      log(LogLevel::warn, "reply to " + who() + " refused: " + std::string(error.message()));
      bytes = mq::control::encode(mq::control::error_reply(error), mq::control::kReplyLimits);
    }
    out_ = std::move(*bytes);
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this(), keep_going](auto ec, std::size_t) {
      if (ec || !keep_going) return self->server_.closed(self);
      self->read_prefix();
    });
  }


  Frame handle(const Frame& frame) {
    auto request = mq::control::request_from(frame);
    if (!request) return refused(frame.type, request.error());
    return std::visit(
        [&](const auto& r) {
          auto reply = reply_to(r);
          return reply ? mq::control::reply_frame(*reply) : refused(frame.type, reply.error());
        },
        *request);
  }

  Frame refused(const std::string& type, const Error& error) {
    log(LogLevel::debug, type.substr(0, 64) + " refused for " + who() + ": " + std::string(error.message()));
    return mq::control::error_reply(error);
  }

  // One reply_to per request type (libmq/control.hpp); each checks the peer's rights through the registry.
  template <class R>
  mq::Result<typename R::Reply> done(mq::Result<void> result) {
    if (!result) return result.error();
    return typename R::Reply{};
  }
  mq::Result<mq::control::Welcome> reply_to(const mq::control::Hello& r) {
    // Topics this client had open before mqd restarted. Only those mqd knows are kept: what a connection remembers
    // is bounded by the registry, however many hellos it sends. The log line says how many, per hello frame (a
    // client with many topics splits them over several).
    std::size_t known = 0;
    for (const auto& t : r.topics)
      if (registry().has(t)) {
        topics_.insert(t);
        ++known;
      }
    if (r.client_id) client_id_ = r.client_id->substr(0, 255);
    log(LogLevel::debug, "hello from " + who() + ": " + std::to_string(known) + " of its " +
                             std::to_string(r.topics.size()) + " open topic(s) registered");
    return mq::control::Welcome{mq::control::kProtocolVersion, registry().config().ns};
  }
  mq::Result<mq::control::Opened> reply_to(const mq::control::Create& r) {
    auto opened = registry().create(peer_, r);
    if (opened) topics_.insert(r.topic);
    return opened;
  }
  mq::Result<mq::control::Opened> reply_to(const mq::control::Open& r) {
    auto opened = registry().open(peer_, r.topic);
    if (opened) topics_.insert(r.topic);
    return opened;
  }
  mq::Result<mq::control::Opened> reply_to(const mq::control::CreateDeadLetter& r) {
    auto opened = registry().create_dead_letter(peer_, r.topic);
    if (opened) topics_.insert(r.topic + std::string(mq::kDeadLetterSuffix));
    return opened;
  }
  mq::Result<mq::control::Done> reply_to(const mq::control::Delete& r) {
    return done<mq::control::Delete>(registry().remove(peer_, r.topic));
  }
  mq::Result<mq::control::TopicNames> reply_to(const mq::control::List&) {
    return mq::control::TopicNames{registry().names(peer_)};
  }
  mq::Result<mq::TopicReport> reply_to(const mq::control::Describe& r) { return registry().describe(peer_, r.topic); }
  mq::Result<mq::control::GroupList> reply_to(const mq::control::Groups& r) {
    auto topic = registry().describe(peer_, r.topic);
    if (!topic) return topic.error();
    return mq::control::GroupList{std::move(topic->groups)};
  }
  mq::Result<mq::DaemonStats> reply_to(const mq::control::Stats&) {
    using namespace std::chrono;
    return mq::DaemonStats{registry().size(), server_.clients(),
                           static_cast<std::uint64_t>(duration_cast<seconds>(steady_clock::now() - server_.started()).count()),
                           registry().stats(peer_)};
  }
  mq::Result<mq::control::Done> reply_to(const mq::control::CreateGroup& r) {
    return done<mq::control::CreateGroup>(registry().create_group(peer_, r));
  }
  mq::Result<mq::control::Done> reply_to(const mq::control::DeleteGroup& r) {
    return done<mq::control::DeleteGroup>(registry().delete_group(peer_, r));
  }
  mq::Result<mq::control::Done> reply_to(const mq::control::SetRetry& r) {
    return done<mq::control::SetRetry>(registry().set_retry(peer_, r));
  }
  mq::Result<mq::control::ResetDone> reply_to(const mq::control::ResetOffsets& r) {
    return registry().reset_offsets(peer_, r);
  }
  mq::Result<mq::control::RecordsDeleted> reply_to(const mq::control::DeleteRecords& r) {
    return registry().delete_records(peer_, r);
  }
  mq::Result<mq::RepairReport> reply_to(const mq::control::Repair& r) { return registry().repair(peer_, r.topic); }

  Registry& registry() { return server_.registry_; }

  Server& server_;
  asio::local::stream_protocol::socket socket_;
  asio::steady_timer deadline_;
  Peer peer_;
  std::string client_id_;
  std::array<std::byte, 4> prefix_{};
  std::vector<std::byte> body_;
  std::string out_;
  std::set<std::string> topics_;  // opened through this connection: recovered when it closes (its process may be dead)
};

Server::Server(asio::io_context& io, Registry& registry) : registry_(registry), acceptor_(io), retry_(io) {}

Server::~Server() { stop(); }

mq::Result<void> Server::listen(const std::string& path) {
  path_ = path;
  boost::system::error_code ec;
  ::unlink(path.c_str());  // a stale socket: we hold the instance lock, so nobody else is serving it
  acceptor_.open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor_.bind(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(Errc::io, "cannot listen on " + path + ": " + ec.message());
  // Clients of the access group may connect; others get EACCES from the kernel.
  const std::string& group = registry_.config().defaults.access_group;
  if (const ::group* g = group.empty() ? nullptr : ::getgrnam(group.c_str())) (void)!::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid);
  ::chmod(path.c_str(), 0660);
  accept();
  return {};
}

void Server::stop() {
  boost::system::error_code ignored;
  if (acceptor_.is_open()) {
    acceptor_.close(ignored);
    ::unlink(path_.c_str());
  }
  for (const auto& s : sessions_) s->close();
}

void Server::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, asio::local::stream_protocol::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      const int e = ec.value();
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        // Out of descriptors or memory: the connection waits in the backlog. Try again in 100 ms rather than spin.
        log(LogLevel::warn, "accept: " + ec.message() + " with " + std::to_string(sessions_.size()) +
                                " connections open; retrying in 100 ms");
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([this](boost::system::error_code wait_ec) {
          if (!wait_ec && acceptor_.is_open()) accept();
        });
        return;
      }
      log(LogLevel::error, "accept: " + ec.message());
      return accept();
    }
    const std::size_t limit = registry_.config().max_clients;
    if (sessions_.size() >= limit) {
      refuse(std::move(socket), limit);
    } else if (auto peer = peer_of(socket.native_handle()); !peer) {
      log(LogLevel::warn, "dropping a connection: " + std::string(peer.error().message()));
    } else {
      auto session = std::make_shared<Session>(*this, std::move(socket), std::move(*peer));
      sessions_.insert(session);
      session->start();
    }
    accept();
  });
}

// One connection over --max-clients: an error reply naming the limit, then hang up. Logged at most once a second.
void Server::refuse(asio::local::stream_protocol::socket socket, std::size_t limit) {
  const auto now = std::chrono::steady_clock::now();
  ++refused_;
  if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
    log(LogLevel::warn, "refusing connections: " + std::to_string(limit) + " are open (--max-clients); " +
                            std::to_string(refused_) + " refused so far");
    last_refusal_log_ = now;
  }
  const Error error(Errc::limit, "mqd serves at most " + std::to_string(limit) +
                                     " control connections at once (--max-clients); try again later");
  auto bytes = mq::control::encode(mq::control::error_reply(error), mq::control::kReplyLimits);
  struct Refusal {
    asio::local::stream_protocol::socket socket;
    std::string bytes;
  };
  auto r = std::make_shared<Refusal>(Refusal{std::move(socket), bytes ? std::move(*bytes) : std::string()});
  asio::async_write(r->socket, asio::buffer(r->bytes), [r](boost::system::error_code, std::size_t) {
    boost::system::error_code ignored;
    r->socket.close(ignored);
  });
}

void Server::closed(const std::shared_ptr<Session>& session) {
  if (sessions_.erase(session) == 0) return;
  session->close();
  // The client's process may have died: recover its claims and unacked records now, not at the next tick.
  log(LogLevel::debug, "connection of " + session->who() + " closed: recovering what dead processes left in its " +
                           std::to_string(session->topics().size()) + " topic(s)");
  registry_.recover(session->topics());
}

}  // namespace mqd
