// Peer credentials and the rights check (see peer.hpp).
#include "peer.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mqd {

bool Peer::in_group(gid_t g) const { return gid == g || std::find(groups.begin(), groups.end(), g) != groups.end(); }

std::string Peer::describe() const {
  return "pid=" + std::to_string(pid) + " uid=" + std::to_string(uid) + " gid=" + std::to_string(gid);
}

mq::Result<Peer> peer_of(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return mq::Error(mq::Errc::io, std::string("SO_PEERCRED: ") + std::strerror(errno));
  Peer p;
  p.pid = cred.pid;
  p.uid = cred.uid;
  p.gid = cred.gid;
  std::vector<gid_t> groups(64);
  for (;;) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      break;
    }
    if (errno != ERANGE) return mq::Error(mq::Errc::io, std::string("SO_PEERGROUPS: ") + std::strerror(errno));
    groups.resize(bytes / sizeof(gid_t) + 1);
  }
  p.groups = std::move(groups);
  return p;
}

bool may_use_any(const Peer& peer) { return peer.uid == 0 || peer.uid == ::geteuid(); }

bool may_use(const Peer& peer, const struct stat& segment) {
  if (may_use_any(peer)) return true;
  const mode_t m = segment.st_mode;
  if (peer.uid == segment.st_uid) return (m & S_IRUSR) && (m & S_IWUSR);
  if (peer.in_group(segment.st_gid)) return (m & S_IRGRP) && (m & S_IWGRP);
  return (m & S_IROTH) && (m & S_IWOTH);
}

bool may_create(const Peer& peer, gid_t gid) { return may_use_any(peer) || peer.in_group(gid); }

}  // namespace mqd
