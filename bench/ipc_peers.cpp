// ipc_peers: the transports a user would pick instead of libmq, timed by the same cross-process harness as libmq
// (bench/harness.hpp), all used the way they usually are, blocking: Unix sockets (stream, seqpacket), pipes, POSIX
// message queues, Boost.Interprocess message_queue and ZeroMQ ipc://. One header per transport in bench/peers/.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "harness.hpp"
#include "machine.hpp"
#include "peers/boost_message_queue.hpp"
#include "peers/pipe.hpp"
#include "peers/posix_mq.hpp"
#include "peers/unix_socket.hpp"
#include "peers/zeromq.hpp"
#include "report.hpp"

int main(int argc, char** argv) {
  mqbench::RunOptions o{.tool = "ipc_peers"};
  if (const int code = mqbench::parse_run_options(
          argc, argv, o,
          "Cross-process RTT and 1P->1C throughput of Unix sockets (stream, seqpacket), pipes, POSIX message queues,\n"
          "  Boost.Interprocess message_queue and ZeroMQ ipc://, all blocking.");
      code >= 0)
    return code;
  // A write to a pipe whose reader died is an EPIPE error for the case, not a SIGPIPE that ends the run (the
  // forked children inherit this).
  ::signal(SIGPIPE, SIG_IGN);

  const mqbench::Machine machine = mqbench::describe_machine();
  mqbench::print_machine_header(machine, o);

  using namespace mqbench::peers;
  std::vector<std::unique_ptr<mqbench::Transport>> transports;
  transports.push_back(std::make_unique<UnixSocketTransport>(UnixSocketTransport::Kind::stream));
  transports.push_back(std::make_unique<UnixSocketTransport>(UnixSocketTransport::Kind::seqpacket));
  transports.push_back(std::make_unique<PipeTransport>());
  transports.push_back(std::make_unique<PosixMqTransport>());
  transports.push_back(std::make_unique<BoostQueueTransport>());
  transports.push_back(std::make_unique<ZmqTransport>());

  std::vector<mqbench::CaseResult> results;
  for (const auto& t : transports) mqbench::run_grid(*t, o, {64, 4096, 1 << 20}, {64, 4096}, results);
  return mqbench::finish_run(o, machine, results);
}
