// The command table of mqctl (see commands.hpp).
#include "commands.hpp"

#include <array>

namespace mqctl {

std::span<const Command> commands() {
  static constexpr std::array<Command, 16> kCommands = {{
      {"create", "create a topic (sizes, policy, storage, access, consumer groups)", run_create},
      {"delete", "delete a topic", run_delete},
      {"delete-records", "delete the records before an offset (the topic then starts there)", run_delete_records},
      {"list", "list the topics you may use", run_list},
      {"describe", "show a topic: settings, offsets, rates and consumer groups", run_describe},
      {"groups", "show the consumer groups of a topic", run_groups},
      {"reset-offsets", "move a consumer group to earliest, latest, an offset or a time", run_reset_offsets},
      {"create-group", "create a consumer group that keeps records before its consumers run", run_create_group},
      {"delete-group", "delete a consumer group", run_delete_group},
      {"set-retry", "show or change how a consumer group retries the records it nacks", run_set_retry},
      {"dlq", "list, show or replay the dead letters of a topic (NAME.dlq)", run_dlq},
      {"repair", "skip the claims dead producers left that readers wait on", run_repair},
      {"produce", "publish records: one per line of stdin, or --value", run_produce},
      {"consume", "print records as 'offset # value'", run_consume},
      {"stats", "offsets, bytes, rates and lag of the topics you may use", run_stats},
      {"top", "a live view of rates and lag", run_top},
  }};
  return kCommands;
}

}  // namespace mqctl
