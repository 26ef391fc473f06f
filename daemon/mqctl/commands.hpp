// mqctl's commands: one function per command, each in the file named after it (cmd_*.cpp), and the table main()
// dispatches on. A command parses its own arguments (CommandLine), returns its exit status, and throws UsageError
// or Failure (cli.hpp) for main() to report.
#pragma once

#include <span>
#include <string_view>

#include "cli.hpp"

namespace mqctl {

using CommandFn = int (*)(const Args& args, Context& context);

struct Command {
  std::string_view name;
  std::string_view summary;  // one line for `mqctl --help`
  CommandFn run;
};

// Every command, in the order `mqctl --help` lists them.
std::span<const Command> commands();

int run_create(const Args& args, Context& context);
int run_delete(const Args& args, Context& context);
int run_list(const Args& args, Context& context);
int run_describe(const Args& args, Context& context);
int run_groups(const Args& args, Context& context);
int run_reset_offsets(const Args& args, Context& context);
int run_create_group(const Args& args, Context& context);
int run_delete_group(const Args& args, Context& context);
int run_set_retry(const Args& args, Context& context);
int run_dlq(const Args& args, Context& context);
int run_delete_records(const Args& args, Context& context);
int run_repair(const Args& args, Context& context);
int run_produce(const Args& args, Context& context);
int run_consume(const Args& args, Context& context);
int run_stats(const Args& args, Context& context);
int run_top(const Args& args, Context& context);

}  // namespace mqctl
