// The typed control protocol (libmq/control.hpp): every request and reply survives the wire unchanged, a bad value
// or a missing field is refused naming the field, and daemon/PROTOCOL.md lists exactly the codec's fields.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "libmq/control.hpp"

namespace {

using namespace mq::control;

// Through the bytes a socket carries and back.
Frame over_the_wire(const Frame& f, const Limits& limits) {
  auto bytes = encode(f, limits);
  EXPECT_TRUE(bytes) << bytes.error().message();
  auto back = decode(std::as_bytes(std::span(bytes->data() + 4, bytes->size() - 4)), limits);
  EXPECT_TRUE(back) << back.error().message();
  return *back;
}

Request round_trip(const Request& r) {
  auto back = request_from(over_the_wire(to_frame(r), kRequestLimits));
  EXPECT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->index(), r.index());
  return *back;
}

template <class Reply>
Reply reply_round_trip(const Reply& r) {
  auto checked = check_reply(over_the_wire(reply_frame(r), kReplyLimits));
  EXPECT_TRUE(checked) << checked.error().message();
  auto back = reply_from<Reply>(*checked);
  EXPECT_TRUE(back) << back.error().message();
  return *back;
}

mq::Error refusal(const Frame& f) {
  auto r = request_from(f);
  EXPECT_FALSE(r) << f.type;
  return r ? mq::Error(mq::Errc::io, "decoded") : r.error();
}

TEST(UnitControl, EveryRequestSurvivesTheWire) {
  mq::CreateOptions all{.capacity = 1u << 20, .max_message = 4096, .policy = mq::Policy::overwrite,
                        .block_timeout = std::chrono::milliseconds(250), .storage = mq::Storage::file,
                        .mode = 0640, .access_group = "mq", .groups = {"billing", "audit"}};
  const auto create = std::get<Create>(round_trip(Create{"orders", all}));
  EXPECT_EQ(create.topic, "orders");
  EXPECT_EQ(create.options.capacity, all.capacity);
  EXPECT_EQ(create.options.max_message, all.max_message);
  EXPECT_EQ(create.options.policy, all.policy);
  EXPECT_EQ(create.options.block_timeout, all.block_timeout);
  EXPECT_EQ(create.options.storage, all.storage);
  EXPECT_EQ(create.options.mode, all.mode);
  EXPECT_EQ(create.options.access_group, all.access_group);
  EXPECT_EQ(create.options.groups, all.groups);
  const auto defaults = std::get<Create>(round_trip(Create{"orders", {}}));  // unset stays unset: mqd's defaults
  EXPECT_FALSE(defaults.options.capacity || defaults.options.policy || defaults.options.mode ||
               defaults.options.access_group);
  EXPECT_TRUE(defaults.options.groups.empty());

  const auto hello = std::get<Hello>(round_trip(Hello{.pid = 4242, .client_id = "mailer", .topics = {"a", "b"}}));
  EXPECT_EQ(hello.pid, 4242u);
  EXPECT_EQ(hello.client_id, "mailer");
  EXPECT_EQ(hello.topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(std::get<Hello>(round_trip(Hello{.pid = 1})).client_id);

  EXPECT_EQ(std::get<Describe>(round_trip(Describe{"kafka-node"})).topic, "kafka-node");
  EXPECT_EQ(std::get<Repair>(round_trip(Repair{"kafka-node"})).topic, "kafka-node");
  EXPECT_EQ(std::get<CreateDeadLetter>(round_trip(CreateDeadLetter{"kafka-node"})).topic, "kafka-node");
  (void)std::get<Stats>(round_trip(Stats{}));
  const auto group = std::get<CreateGroup>(round_trip(CreateGroup{"t", "g", mq::Start::latest}));
  EXPECT_EQ(group.group, "g");
  EXPECT_EQ(group.start, mq::Start::latest);
  EXPECT_FALSE(group.retry.max_attempts || group.retry.factor || group.retry.jitter) << "unset stays unset";
  const mq::RetryPolicy policy{.max_attempts = 7, .backoff = std::chrono::milliseconds(250), .factor = 1.5,
                               .max_backoff = std::chrono::milliseconds(60'000), .jitter = 0.25};
  const auto with_retry =
      std::get<CreateGroup>(round_trip(CreateGroup{"t", "g", {}, mq::RetryFields::of(policy)})).retry.over({});
  EXPECT_EQ(with_retry.max_attempts, 7u);
  EXPECT_EQ(with_retry.backoff, std::chrono::milliseconds(250));
  EXPECT_EQ(with_retry.factor, 1.5);
  EXPECT_EQ(with_retry.max_backoff, std::chrono::milliseconds(60'000));
  EXPECT_EQ(with_retry.jitter, 0.25);
  EXPECT_FALSE(group.ordering) << "unset stays unset: mqd's default, none";
  for (const mq::Ordering o : {mq::Ordering::none, mq::Ordering::key, mq::Ordering::exclusive}) {
    const auto ordered = std::get<CreateGroup>(round_trip(CreateGroup{"t", "g", {}, {}, o}));
    EXPECT_EQ(ordered.ordering, std::optional<mq::Ordering>(o)) << mq::ordering_name(o);
  }
  const auto set = std::get<SetRetry>(round_trip(SetRetry{"t", "g", {.jitter = 0.1}}));
  EXPECT_EQ(set.retry.jitter, std::optional<double>(0.1));
  EXPECT_FALSE(set.retry.max_attempts) << "a field not given stays unchanged";
  EXPECT_EQ(std::get<DeleteRecords>(round_trip(DeleteRecords{"t", 77})).before, 77u);
  for (const mq::ResetTarget to : {mq::ResetTarget{mq::Start::latest}, mq::ResetTarget{mq::Offset{12}},
                                   mq::ResetTarget{mq::TimePoint{1'700'000'000'000'000'000}}}) {
    const auto reset = std::get<ResetOffsets>(round_trip(ResetOffsets{"t", "g", to}));
    EXPECT_EQ(reset.to.index(), to.index());
    EXPECT_EQ(reset.to, to);
  }
}

// A client sends only what differs from the defaults, so an mqd from before retries or orderings (which refuses
// fields it does not know) still creates a default group; what is sent arrives.
TEST(UnitControl, CreateGroupCarriesOnlyTheSettingsThatAreNotDefaults) {
  const auto plain = to_frame(CreateGroup::of("t", "g", mq::Start::latest));
  std::vector<std::string> keys;
  for (const auto& [k, v] : plain.fields) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"topic", "group", "start"}));
  EXPECT_EQ(to_frame(CreateGroup::of("t", "g", mq::Start::earliest, {}, mq::Ordering::none)).fields.size(), 3u);

  const auto sent =
      to_frame(CreateGroup::of("t", "g", mq::Start::earliest, {.max_attempts = 3}, mq::Ordering::exclusive));
  EXPECT_EQ(sent.get("ordering"), std::optional<std::string_view>("exclusive"));
  EXPECT_EQ(sent.get("max_attempts"), std::optional<std::string_view>("3"));
  EXPECT_FALSE(sent.get("backoff_ms")) << "a default retry field was sent";
  auto back = request_from(sent);
  ASSERT_TRUE(back) << back.error().message();
  const auto& request = std::get<CreateGroup>(*back);
  EXPECT_EQ(request.ordering, std::optional<mq::Ordering>(mq::Ordering::exclusive));
  EXPECT_EQ(request.retry.over({}).max_attempts, 3u);
  EXPECT_EQ(to_frame(CreateGroup::of("t", "g", mq::Start::earliest, {}, mq::Ordering::key)).get("ordering"),
            std::optional<std::string_view>("key"));
}

TEST(UnitControl, EveryReplySurvivesTheWireWithItsNestedEntries) {
  mq::TopicReport a{.name = "orders", .capacity = 65536, .max_message = 16384, .policy = mq::Policy::overwrite,
                    .storage = mq::Storage::file, .mode = 0660, .access_group = "mq",
                    .block_timeout = std::chrono::milliseconds(10'000), .earliest = 3, .latest = 9, .bytes = 640,
                    .producers = 2, .stalled_producers = 1, .msgs_per_s = 5, .bytes_per_s = 320,
                    .orphans_repaired = 1, .exclusive_pid = 4321, .exclusive_plain = true};
  a.stuck = {{"billing", 4, 256, mq::StuckInfo::Cause::stalled_producer, 99, 7},
             {"audit", 5, 320, mq::StuckInfo::Cause::orphaned, 0, 1}};
  a.groups = {{"billing", 3, 4, 6, 1, 1, 2, 17, mq::RetryFields::of({.max_attempts = 9, .factor = 3.25}),
               mq::Ordering::exclusive, 4242},
              {"audit", 5, 5, 4, 0, 0}};
  mq::TopicReport b{.name = "audit"};
  b.groups = {{"readers", 0, 0, 0, 2, 0, 0, 0, {}, mq::Ordering::key},
              {"idle", 0, 0, 0, 0, 0, 0, 0, {}, mq::Ordering::exclusive, 0}};
  const auto stats = reply_round_trip(mq::DaemonStats{.topics = 3, .clients = 2, .uptime_s = 61, .sections = {a, b}});
  EXPECT_EQ(stats.topics, 3u);
  EXPECT_EQ(stats.clients, 2u);
  EXPECT_EQ(stats.uptime_s, 61u);
  ASSERT_EQ(stats.sections.size(), 2u);
  const auto& t = stats.sections[0];
  EXPECT_EQ(t.name, "orders");
  EXPECT_EQ(t.policy, mq::Policy::overwrite);
  EXPECT_EQ(t.storage, mq::Storage::file);
  EXPECT_EQ(t.mode, 0660u);
  EXPECT_EQ(t.block_timeout, std::chrono::milliseconds(10'000));
  EXPECT_EQ(t.earliest, 3u);
  EXPECT_EQ(t.latest, 9u);
  EXPECT_EQ(t.orphans_repaired, 1u);
  EXPECT_EQ(t.exclusive_pid, std::optional<std::uint64_t>(4321));
  EXPECT_EQ(t.exclusive_plain, std::optional<bool>(true));
  EXPECT_FALSE(stats.sections[1].exclusive_pid) << "a topic without an exclusive producer gained one on the wire";
  EXPECT_FALSE(stats.sections[1].exclusive_plain);
  ASSERT_EQ(t.stuck.size(), 2u);
  EXPECT_EQ(t.stuck[0].group, "billing");
  EXPECT_EQ(t.stuck[0].cause, mq::StuckInfo::Cause::stalled_producer);
  EXPECT_EQ(t.stuck[0].pid, 99u);
  EXPECT_EQ(t.stuck[1].cause, mq::StuckInfo::Cause::orphaned);
  EXPECT_EQ(t.stuck[1].for_s, 1u);
  ASSERT_EQ(t.groups.size(), 2u);
  EXPECT_EQ(t.groups[0].name, "billing");
  EXPECT_EQ(t.groups[0].lag, 6u);
  EXPECT_EQ(t.groups[0].retrying, std::optional<std::uint64_t>(2));
  EXPECT_EQ(t.groups[0].parked, std::optional<std::uint64_t>(17));
  EXPECT_EQ(t.groups[0].retry.max_attempts, std::optional<std::uint32_t>(9));
  EXPECT_EQ(t.groups[0].retry.factor, std::optional<double>(3.25));
  EXPECT_EQ(t.groups[0].ordering, std::optional<mq::Ordering>(mq::Ordering::exclusive));
  EXPECT_EQ(t.groups[0].active_pid, std::optional<std::uint64_t>(4242));
  EXPECT_FALSE(t.groups[1].retrying) << "an older mqd's group (no retry fields) decodes";
  EXPECT_FALSE(t.groups[1].parked) << "an older mqd's group (no parked field) decodes";
  EXPECT_FALSE(t.groups[1].ordering) << "an older mqd's group (no ordering fields) decodes";
  EXPECT_FALSE(t.groups[1].active_pid);
  EXPECT_EQ(t.groups[1].name, "audit");
  EXPECT_EQ(t.groups[1].committed, 5u);
  ASSERT_EQ(stats.sections[1].groups.size(), 2u);  // a section's groups stay its own
  EXPECT_EQ(stats.sections[1].groups[0].members, 2u);
  EXPECT_EQ(stats.sections[1].groups[0].ordering, std::optional<mq::Ordering>(mq::Ordering::key));
  EXPECT_FALSE(stats.sections[1].groups[0].active_pid) << "a key group gained an active pid on the wire";
  EXPECT_EQ(stats.sections[1].groups[1].active_pid, std::optional<std::uint64_t>(0)) << "no member takes: 0";
  EXPECT_TRUE(stats.sections[1].stuck.empty());

  const auto repair = reply_round_trip(
      mq::RepairReport{.repaired = {{10, 2, 640}, {20, 1, 1280}},
                       .stuck = {{"billing", 30, mq::StuckInfo::Cause::stalled_producer, 7}}});
  ASSERT_EQ(repair.repaired.size(), 2u);
  EXPECT_EQ(repair.repaired[1].offset, 20u);
  EXPECT_EQ(repair.repaired[1].position, 1280u);
  ASSERT_EQ(repair.stuck.size(), 1u);
  EXPECT_EQ(repair.stuck[0].pid, 7u);
  EXPECT_TRUE(reply_round_trip(GroupList{}).groups.empty());
  EXPECT_EQ(reply_round_trip(Opened{mq::Storage::file, "/var/lib/mq", "ns"}).directory, "/var/lib/mq");
  EXPECT_EQ(reply_round_trip(ResetDone{5}).offset, 5u);
  EXPECT_FALSE(reply_round_trip(ResetDone{}).offset);
}

TEST(UnitControl, ABadValueOrAMissingFieldIsRefusedNamingTheField) {
  struct Case {
    Frame frame;
    const char* names;
  };
  const Case cases[] = {
      {Frame("create").add("topic", "t").add("capacity", "lots"), "capacity='lots' is not a whole number"},
      {Frame("create").add("topic", "t").add("capacity", "1MiB"), "capacity='1MiB'"},
      {Frame("create").add("topic", "t").add("capacity", "99999999999999999999"), "capacity="},
      {Frame("create").add("topic", "t").add("policy", "drop"), "policy='drop' is not block or overwrite"},
      {Frame("create").add("topic", "t").add("storage", "disk"), "storage='disk' is not shm or file"},
      {Frame("create").add("topic", "t").add("mode", "999"), "mode='999'"},
      {Frame("create").add("topic", "t").add("mode", "1777"), "mode='1777'"},
      {Frame("create").add("topic", "t").add("block_timeout_ms", "-1"), "block_timeout_ms='-1'"},
      {Frame("create").add("capacity", "65536"), "create request without field 'topic'"},
      {Frame("hello").add("pid", "x"), "pid='x'"},
      {Frame("create-group").add("topic", "t").add("group", "g").add("start", "soon"),
       "start='soon' is not earliest or latest"},
      {Frame("reset-offsets").add("topic", "t").add("group", "g").add("to", "soon"), "to='soon'"},
      {Frame("set-retry").add("topic", "t").add("group", "g").add("factor", "fast"),
       "factor='fast' is not a decimal number"},
      {Frame("set-retry").add("topic", "t").add("group", "g").add("jitter", "nan"), "jitter='nan'"},
      {Frame("create-group").add("topic", "t").add("group", "g").add("max_attempts", "-1"), "max_attempts='-1'"},
      {Frame("create-group").add("topic", "t").add("group", "g").add("ordering", "fifo"),
       "ordering='fifo' is not none, key or exclusive"},
      {Frame("create-group").add("topic", "t").add("group", "g").add("ordering", "Exclusive"), "ordering='Exclusive'"},
      {Frame("create-group").add("topic", "t").add("group", "g").add("ordering", ""), "ordering=''"},
      {Frame("reset-offsets").add("topic", "t").add("group", "g"), "without field 'to' or 'to_time'"},
      {Frame("reset-offsets").add("topic", "t").add("group", "g").add("to_time", "99999999999999999999"),
       "to_time='99999999999999999999' is not ns since the epoch"},
      {Frame("reset-offsets").add("topic", "t").add("group", "g").add("to", "earliest").add("to_time", "5"),
       "with both 'to' and 'to_time'"},
      // Which of two values was meant is a guess, and a misspelt option must not vanish: both are refused.
      {Frame("delete").add("topic", "a").add("topic", "b"), "delete request repeats field 'topic'"},
      {Frame("create").add("topic", "t").add("capacity", "65536").add("capacity", "1048576"), "repeats field 'capacity'"},
      {Frame("create").add("topic", "t").add("capcity", "65536"), "create request with unknown field 'capcity'"},
      {Frame("list").add("topic", "t"), "list request with unknown field 'topic'"},
      {Frame("delete-records").add("topic", "t").add("before", "-3"), "before='-3'"},
      {Frame("delete-group").add("topic", "t"), "delete-group request without field 'group'"},
      {Frame("frobnicate"), "unknown request type 'frobnicate'"},
  };
  for (const auto& c : cases) {
    const auto e = refusal(c.frame);
    EXPECT_EQ(e.code(), mq::Errc::invalid_argument) << c.names;
    EXPECT_NE(e.message().find(c.names), std::string::npos) << e.message();
  }
  // A reply short of a field it must have is an error too, not zeros.
  auto partial = reply_from<RecordsDeleted>(ok_reply());
  ASSERT_FALSE(partial);
  EXPECT_NE(partial.error().message().find("'earliest'"), std::string::npos) << partial.error().message();
}

// mq::Client sends a request again after a broken connection only when idempotent() says so: exactly these types,
// by the value each request declares (a request declared `idempotent = false` is not one).
TEST(UnitControl, ExactlyTheIdempotentRequestTypesAreSentAgain) {
  const std::set<std::string> idempotent_types = {"hello",  "open",  "list",      "describe",
                                                   "groups", "stats", "set-retry", "create-dead-letter"};
  const std::set<std::string> others = {"create",        "delete",         "create-group", "delete-group",
                                        "reset-offsets", "delete-records", "repair"};
  std::set<std::string> all;
  for (const auto& spec : protocol_table()) {
    const std::string type(spec.type);
    all.insert(type);
    EXPECT_EQ(idempotent(type), idempotent_types.count(type) == 1) << type;
  }
  for (const auto& type : idempotent_types) EXPECT_TRUE(idempotent(type)) << type;
  for (const auto& type : others) EXPECT_FALSE(idempotent(type)) << type;
  std::set<std::string> listed = idempotent_types;
  listed.insert(others.begin(), others.end());
  EXPECT_EQ(all, listed) << "a request type this test does not sort into idempotent or not";
  EXPECT_FALSE(idempotent("frobnicate"));
  EXPECT_FALSE(idempotent(""));
}

// Each row of the request table in daemon/PROTOCOL.md names the codec's request fields, in wire order and with
// their marks (`name?` optional, `name*` repeated); every reply field is named in the document.
TEST(UnitControl, TheProtocolDocumentListsTheCodecsFields) {
  std::ifstream in(MQ_PROTOCOL_MD);
  ASSERT_TRUE(in) << MQ_PROTOCOL_MD;
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::regex quoted("`([^`]+)`");
  for (const auto& spec : protocol_table()) {
    const std::string head = "| `" + std::string(spec.type) + "` |";
    const auto at = doc.find(head);
    ASSERT_NE(at, std::string::npos) << "no row for " << spec.type;
    const auto cell_end = doc.find(" | ", at + head.size());
    const std::string cell = doc.substr(at + head.size(), cell_end - at - head.size());
    std::vector<std::string> named;
    for (auto m = std::sregex_iterator(cell.begin(), cell.end(), quoted); m != std::sregex_iterator(); ++m)
      named.push_back((*m)[1]);
    std::size_t next = 0;
    for (const auto& field : spec.request) {
      while (next < named.size() && named[next] != field) ++next;
      EXPECT_LT(next, named.size()) << spec.type << ": `" << field << "` missing or out of order in: " << cell;
      ++next;
    }
    for (auto field : spec.reply) {
      while (!field.empty() && (field.back() == '*' || field.back() == '?')) field.pop_back();
      EXPECT_NE(doc.find("`" + field), std::string::npos) << spec.type << " reply field " << field;
    }
  }
}

}  // namespace
