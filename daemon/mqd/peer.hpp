// Who is on the other end of a control connection (SO_PEERCRED + SO_PEERGROUPS), and what that peer may do with a
// topic segment: the same owner/group/mode rule the kernel applies when the client maps it.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "libmq/error.hpp"

namespace mqd {

struct Peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, primary included

  bool in_group(gid_t g) const;
  std::string describe() const;  // "pid=12 uid=1000"
};

// Reads the credentials of a connected Unix socket.
mq::Result<Peer> peer_of(int fd);

// May `peer` use every topic, whatever its segment's owner, group and mode? Root and mqd's own user may.
bool may_use_any(const Peer& peer);
// May `peer` read and write a segment with this owner, group and mode? Those who may_use_any always may.
bool may_use(const Peer& peer, const struct stat& segment);
// May `peer` create a topic owned by group `gid`? Root, mqd's user, and members of that group may.
bool may_create(const Peer& peer, gid_t gid);

}  // namespace mqd
