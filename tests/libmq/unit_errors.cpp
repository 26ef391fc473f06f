// Unit tests of bad input and hostile segments: topic names, topic options, create/open/remove errors, corrupted
// segment headers and records written into the shm file from outside, handles used in a fork child, and the
// file-backed storage that must survive closing every handle.
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "layout.hpp"
#include "libmq/libmq.hpp"
#include "liveness.hpp"
#include "segment.hpp"
#include "test_point.hpp"
#include "test_util.hpp"

namespace {

using mq::Offset;
using mqtest::bytes;
using mqtest::contains;
using mqtest::kNow;
using mqtest::text;
namespace d = mq::detail;

using UnitErrors = mqtest::TopicTest;

std::string shm_file(const std::string& ns, const std::string& name) { return "/dev/shm/mq@" + ns + "@" + name; }

// Writes `value` at byte `at` of a segment file, as another (buggy or hostile) process could.
template <class T>
void poke(const std::string& path, std::size_t at, T value) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  EXPECT_EQ(::pwrite(fd, &value, sizeof value, static_cast<off_t>(at)), static_cast<ssize_t>(sizeof value));
  ::close(fd);
}

template <class T>
T peek(const std::string& path, std::size_t at) {
  T value{};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  if (fd >= 0) {
    EXPECT_EQ(::pread(fd, &value, sizeof value, static_cast<off_t>(at)), static_cast<ssize_t>(sizeof value));
    ::close(fd);
  }
  return value;
}

void expect_error(const mq::Error& e, mq::Errc code, std::initializer_list<std::string_view> fragments) {
  EXPECT_EQ(e.code(), code) << e.what();
  for (const auto f : fragments) EXPECT_TRUE(contains(e.message(), f)) << "'" << f << "' not in: " << e.what();
}

// ---------------------------------------------------------------------------------------------------------------
// Names

TEST(UnitErrcTable, EveryCodeHasOneNameAndOneTextThatReadBackAsIt) {
  const auto table = mq::errc_table();
  ASSERT_EQ(table.size(), static_cast<std::size_t>(mq::Errc::wrong_process) + 1);
  std::set<std::string_view> seen;
  for (const auto& row : table) {
    EXPECT_EQ(mq::errc_name(row.code), row.name);
    EXPECT_EQ(mq::to_string(row.code), row.text);
    EXPECT_TRUE(seen.insert(row.name).second) << row.name;
    EXPECT_TRUE(seen.insert(row.text).second || row.text == row.name) << row.text;
    EXPECT_EQ(mq::errc_from_string(row.name), row.code) << row.name;
    EXPECT_EQ(mq::errc_from_string(row.text), row.code) << row.text;
    EXPECT_EQ(mq::Error(row.code).message(), row.text);
  }
  EXPECT_EQ(mq::errc_from_string("no such code"), std::nullopt);
  EXPECT_EQ(mq::to_string(static_cast<mq::Errc>(999)), "unknown error");
}

TEST_F(UnitErrors, TopicNamesBreakingTheRuleAreInvalidNameSayingWhy) {
  struct Case {
    std::string name;
    std::vector<std::string_view> says;
  };
  const Case cases[] = {
      {"", {"1..249", "length=0"}},
      {std::string(250, 'a'), {"1..249", "length=250"}},
      {".", {"'.' or '..'"}},
      {"..", {"'.' or '..'"}},
      {"a/b", {"'/'"}},
      {"../etc/passwd", {"'/'"}},
      {"a b", {"' '"}},
      {"caf\xc3\xa9", {"0xc3"}},
      {"ns@topic", {"'@'"}},
      {std::string("nul\0byte", 8), {"0x00"}},
      {"tab\t", {"0x09"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("name=\"" + c.name + "\"");
    auto v = mq::validate_topic_name(c.name);
    ASSERT_FALSE(v);
    for (const auto s : c.says) EXPECT_TRUE(contains(v.error().message(), s)) << v.error().what();
    auto created = mq::Topic::create(c.name);
    ASSERT_FALSE(created);
    EXPECT_EQ(created.error().code(), mq::Errc::invalid_name) << created.error().what();
    auto opened = mq::Topic::open(c.name);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code(), mq::Errc::invalid_name) << opened.error().what();
    auto removed = mq::Topic::remove(c.name);
    ASSERT_FALSE(removed);
    EXPECT_EQ(removed.error().code(), mq::Errc::invalid_name) << removed.error().what();
  }
  auto names = mq::Topic::list();
  ASSERT_TRUE(names);
  EXPECT_TRUE(names->empty()) << "a rejected name left something behind";
}

TEST_F(UnitErrors, TopicNameOf249CharactersIsAccepted) {
  std::string name = "u" + std::to_string(::getpid()) + "-";
  name.resize(249, 'x');
  name.back() = '9';
  ASSERT_TRUE(mq::validate_topic_name(name));
  ASSERT_TRUE(mq::validate_topic_name("Az09._-"));
  // Without a namespace "mq@" + 249 characters fits a 255-byte file name.
  const mq::OpenOptions no_ns{.ns = std::string()};
  auto created = mq::Topic::create(name, {.capacity = mq::kMinCapacity, .ns = std::string()});
  ASSERT_TRUE(created) << created.error().what();
  auto opened = mq::Topic::open(name, no_ns);
  ASSERT_TRUE(opened) << opened.error().what();
  EXPECT_EQ(opened->name(), name);
  EXPECT_EQ(opened->info().name, name);
  EXPECT_TRUE(mq::Topic::remove(name, no_ns));
}

TEST_F(UnitErrors, NamespacePlusNameThatDoesNotFitAFileNameIsInvalidName) {
  const std::string name(249, 'n');
  auto r = mq::Topic::create(name);  // the fixture's namespace makes the file name longer than 255 bytes
  ASSERT_FALSE(r);
  expect_error(r.error(), mq::Errc::invalid_name, {"file name", "namespace=" + ns()});
  auto o = mq::Topic::open(name);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().code(), mq::Errc::invalid_name);
}

TEST_F(UnitErrors, InvalidNamespaceIsInvalidName) {
  for (const std::string& bad : {std::string("a/b"), std::string(".."), std::string(65, 's'), std::string("x@y")}) {
    SCOPED_TRACE(bad);
    auto r = mq::Topic::create("fine", {.ns = bad});
    ASSERT_FALSE(r);
    expect_error(r.error(), mq::Errc::invalid_name, {"namespace"});
    auto o = mq::Topic::open("fine", {.ns = bad});
    ASSERT_FALSE(o);
    EXPECT_EQ(o.error().code(), mq::Errc::invalid_name);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Options

TEST_F(UnitErrors, BadTopicOptionsAreInvalidArgumentNamingTheField) {
  struct Case {
    const char* what;
    mq::TopicOptions options;
    std::vector<std::string_view> says;
  };
  const Case cases[] = {
      {"capacity not a power of two", {.capacity = 100'000}, {"capacity", "100000"}},
      {"capacity below 64 KiB", {.capacity = 32 << 10}, {"capacity", "32768"}},
      {"capacity 0", {.capacity = 0}, {"capacity"}},
      {"capacity over 1 TiB", {.capacity = std::size_t{1} << 41}, {"capacity"}},
      {"max_message over capacity / 4", {.capacity = 64 << 10, .max_message = (16 << 10) + 1}, {"max_message", "16385"}},
      {"world-writable mode", {.mode = 0666}, {"mode", "0666"}},
      {"other-write only", {.mode = 0602}, {"mode", "0602"}},
      {"bits beyond 0777", {.mode = 04660}, {"mode", "04660"}},
      {"negative block timeout", {.block_timeout = std::chrono::milliseconds(-1)}, {"block_timeout"}},
      {"file storage without a directory", {.storage = mq::Storage::file}, {"directory"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = mq::Topic::create("opts", c.options);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), mq::Errc::invalid_argument) << r.error().what();
    for (const auto s : c.says) EXPECT_TRUE(contains(r.error().message(), s)) << r.error().what();
    EXPECT_TRUE(contains(r.error().message(), "topic=opts")) << r.error().what();
  }
  auto names = mq::Topic::list();
  ASSERT_TRUE(names);
  EXPECT_TRUE(names->empty()) << "a refused create left a segment behind";
  // The edges that are allowed.
  auto ok = mq::Topic::create("opts", {.capacity = 64 << 10, .max_message = 16 << 10, .mode = 0600});
  EXPECT_TRUE(ok) << ok.error().what();
}

TEST_F(UnitErrors, ModeIsAppliedToTheSegment) {
  ASSERT_TRUE(mq::Topic::create("mode640", {.capacity = mq::kMinCapacity, .mode = 0640}));
  ASSERT_TRUE(mq::Topic::create("default-mode", {.capacity = mq::kMinCapacity}));
  struct stat st{};
  ASSERT_EQ(::stat(shm_file(ns(), "mode640").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(::stat(shm_file(ns(), "default-mode").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u) << "default mode 0660, whatever the umask";
  EXPECT_EQ(st.st_size, static_cast<off_t>(d::kRingOffset + mq::kMinCapacity));
}

// ---------------------------------------------------------------------------------------------------------------
// Create, open, remove

TEST_F(UnitErrors, CreateTwiceIsExistsAndKeepsTheFirst) {
  auto first = mq::Topic::create("twice", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(first);
  ASSERT_TRUE(mq::Producer(*first).publish(bytes("kept")));
  auto second = mq::Topic::create("twice", {.capacity = std::size_t{1} << 20});
  ASSERT_FALSE(second);
  expect_error(second.error(), mq::Errc::exists, {"topic=twice"});
  auto opened = mq::Topic::open("twice");
  ASSERT_TRUE(opened) << opened.error().what();
  EXPECT_EQ(opened->info().capacity, mq::kMinCapacity);
  EXPECT_EQ(opened->info().latest, 1u) << "the failed create did not reset the topic";
}

TEST_F(UnitErrors, OpenOrRemoveOfAMissingTopicIsNotFound) {
  auto o = mq::Topic::open("missing");
  ASSERT_FALSE(o);
  expect_error(o.error(), mq::Errc::not_found, {"topic=missing"});
  auto r = mq::Topic::remove("missing");
  ASSERT_FALSE(r);
  expect_error(r.error(), mq::Errc::not_found, {"topic=missing"});
  // Another namespace's topic is not this one's.
  ASSERT_TRUE(mq::Topic::create("elsewhere", {.capacity = mq::kMinCapacity, .ns = ns() + "-other"}));
  auto e = mq::Topic::open("elsewhere");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), mq::Errc::not_found);
  EXPECT_TRUE(mq::Topic::remove("elsewhere", {.ns = ns() + "-other"}));
}

TEST_F(UnitErrors, OpenOrCreateCreatesOnceThenOpens) {
  auto a = mq::Topic::open_or_create("auto", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(a) << a.error().what();
  ASSERT_TRUE(mq::Producer(*a).publish(bytes("x")));
  auto b = mq::Topic::open_or_create("auto", {.capacity = std::size_t{1} << 20});
  ASSERT_TRUE(b) << b.error().what();
  EXPECT_EQ(b->info().capacity, mq::kMinCapacity) << "an existing topic is opened, not re-created";
  EXPECT_EQ(b->info().latest, 1u);
  auto names = mq::Topic::list();
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, std::vector<std::string>{"auto"});
}

// ---------------------------------------------------------------------------------------------------------------
// Corrupted segments (written into the shm file from outside)

TEST_F(UnitErrors, BadMagicIsBadSegment) {
  ASSERT_TRUE(mq::Topic::create("magic", {.capacity = mq::kMinCapacity}));
  poke<std::uint64_t>(shm_file(ns(), "magic"), offsetof(d::SegmentHeader, magic), 0x0123456789abcdefULL);
  auto r = mq::Topic::open("magic");
  ASSERT_FALSE(r);
  expect_error(r.error(), mq::Errc::bad_segment, {"magic", "topic=magic"});
}

TEST_F(UnitErrors, LayoutVersion1IsVersionMismatchNamingBothVersions) {
  // Version 1 packed records at 8 bytes; version 2 reads them as corrupt, so it must refuse the segment whole.
  ASSERT_TRUE(mq::Topic::create("v1", {.capacity = mq::kMinCapacity}));
  poke<std::uint32_t>(shm_file(ns(), "v1"), offsetof(d::SegmentHeader, version), 1);
  auto r = mq::Topic::open("v1");
  ASSERT_FALSE(r);
  expect_error(r.error(), mq::Errc::version_mismatch,
               {"version 1", "version " + std::to_string(d::kLayoutVersion), "topic=v1"});
}

TEST_F(UnitErrors, CorruptedCapacityIsBadSegment) {
  ASSERT_TRUE(mq::Topic::create("cap", {.capacity = mq::kMinCapacity}));
  const std::string file = shm_file(ns(), "cap");
  for (const std::uint64_t bad : {std::uint64_t{12345}, std::uint64_t{0}, std::uint64_t{1} << 20,
                                  std::uint64_t{1} << 63}) {
    SCOPED_TRACE(bad);
    poke<std::uint64_t>(file, offsetof(d::SegmentHeader, capacity), bad);
    auto r = mq::Topic::open("cap");
    ASSERT_FALSE(r);
    expect_error(r.error(), mq::Errc::bad_segment, {"topic=cap"});
  }
  poke<std::uint64_t>(file, offsetof(d::SegmentHeader, capacity), mq::kMinCapacity);
  EXPECT_TRUE(mq::Topic::open("cap")) << "restored, the segment opens again";
}

TEST_F(UnitErrors, TruncatedSegmentIsBadSegment) {
  ASSERT_TRUE(mq::Topic::create("short", {.capacity = mq::kMinCapacity}));
  const std::string file = shm_file(ns(), "short");
  for (const off_t size : {off_t{d::kPageSize}, off_t{d::kRingOffset + 100}, off_t{d::kRingOffset + 4096}}) {
    SCOPED_TRACE(size);
    ASSERT_EQ(::truncate(file.c_str(), size), 0);
    auto r = mq::Topic::open("short");
    ASSERT_FALSE(r);
    expect_error(r.error(), mq::Errc::bad_segment, {"topic=short"});
  }
}

TEST_F(UnitErrors, ASecondOpenInOneProcessSharesTheMappingAndStillChecksTheHeader) {
  auto created = mq::Topic::create("shared", {.capacity = mq::kMinCapacity}).value();
  auto a = mq::Topic::open("shared").value();
  auto b = mq::Topic::open("shared").value();
  EXPECT_EQ(a.segment(), created.segment()) << "the creator's mapping is shared";
  EXPECT_EQ(b.segment(), a.segment());

  const std::string file = shm_file(ns(), "shared");
  poke<std::uint64_t>(file, offsetof(d::SegmentHeader, magic), 0x0123456789abcdefULL);
  auto corrupted = mq::Topic::open("shared");
  ASSERT_FALSE(corrupted) << "a shared mapping is checked again at each open";
  expect_error(corrupted.error(), mq::Errc::bad_segment, {"magic", "topic=shared"});
  poke<std::uint64_t>(file, offsetof(d::SegmentHeader, magic), d::kMagic);
  EXPECT_EQ(mq::Topic::open("shared").value().segment(), a.segment());

  mqtest::Child child([&] {
    auto mine = mq::Topic::open("shared");  // a fork child maps its own
    return mine && mine->segment() != a.segment() && mine->segment()->bytes().data() != a.segment()->bytes().data() ? 0 : 1;
  });
  EXPECT_EQ(child.wait(), 0);

  ASSERT_TRUE(mq::Topic::remove("shared"));
  auto again = mq::Topic::create("shared", {.capacity = mq::kMinCapacity}).value();
  EXPECT_NE(again.segment(), a.segment()) << "a topic created again under the name is another segment";
  EXPECT_EQ(mq::Topic::open("shared").value().segment(), again.segment());
}

TEST_F(UnitErrors, SegmentOfAnotherTopicIsBadSegment) {
  ASSERT_TRUE(mq::Topic::create("original", {.capacity = mq::kMinCapacity}));
  // A copy of "original" under the name "impostor": the header names another topic.
  const std::string from = shm_file(ns(), "original");
  const std::string to = shm_file(ns(), "impostor");
  std::vector<char> image(d::kRingOffset + mq::kMinCapacity);
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(in, 0);
  ASSERT_EQ(::pread(in, image.data(), image.size(), 0), static_cast<ssize_t>(image.size()));
  ::close(in);
  const int out = ::open(to.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(out, 0);
  ASSERT_EQ(::pwrite(out, image.data(), image.size(), 0), static_cast<ssize_t>(image.size()));
  ::close(out);
  auto r = mq::Topic::open("impostor");
  ASSERT_FALSE(r);
  expect_error(r.error(), mq::Errc::bad_segment, {"original", "topic=impostor"});
}

TEST_F(UnitErrors, CorruptedRecordLengthIsBadSegmentOnPoll) {
  auto topic = mq::Topic::create("reclen", {.capacity = mq::kMinCapacity}).value();
  mq::Consumer consumer(topic, {.group = "g", .start = mq::Start::earliest, .auto_ack = false});
  mq::Producer producer(topic);
  ASSERT_TRUE(producer.publish(bytes("payload")));
  const std::string file = shm_file(ns(), "reclen");
  const std::size_t length_at = d::kRingOffset + offsetof(d::RecordHeader, length);
  const auto good = peek<std::uint32_t>(file, length_at);
  ASSERT_EQ(good, d::record_bytes(0, 0, 7));
  for (const std::uint32_t bad : {0x7ffffff8u, 0xfffffff8u, std::uint32_t{mq::kMinCapacity} + 8, 8u, 44u, 48u + 8u}) {
    SCOPED_TRACE(bad);
    poke<std::uint32_t>(file, length_at, bad);
    auto m = consumer.poll(kNow);
    ASSERT_FALSE(m) << "delivered a record of length " << bad;
    expect_error(m.error(), mq::Errc::bad_segment, {"position 0"});
    EXPECT_EQ(consumer.unacked(), 0u) << "a refused record is not held";
  }
  poke<std::uint32_t>(file, length_at, good);
  auto m = consumer.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(text(m->payload()), "payload");
}

TEST_F(UnitErrors, CorruptedRecordOffsetOrPayloadLengthIsBadSegmentOnPoll) {
  auto topic = mq::Topic::create("recoff", {.capacity = mq::kMinCapacity}).value();
  mq::Consumer consumer(topic, {.group = "g", .start = mq::Start::earliest, .auto_ack = false});
  mq::Producer producer(topic);
  ASSERT_TRUE(producer.publish(bytes("payload")));
  const std::string file = shm_file(ns(), "recoff");
  poke<std::uint64_t>(file, d::kRingOffset + offsetof(d::RecordHeader, offset), 99);
  auto m = consumer.poll(kNow);
  ASSERT_FALSE(m);
  expect_error(m.error(), mq::Errc::bad_segment, {"99"});
  poke<std::uint64_t>(file, d::kRingOffset + offsetof(d::RecordHeader, offset), 0);
  poke<std::uint32_t>(file, d::kRingOffset + offsetof(d::RecordHeader, payload_len), 4096);
  m = consumer.poll(kNow);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), mq::Errc::bad_segment);
  poke<std::uint32_t>(file, d::kRingOffset + offsetof(d::RecordHeader, key_len), 0xfffffff0u);
  m = consumer.poll(kNow);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), mq::Errc::bad_segment);
}

// A corrupted position in the segment (here: a group's cursor, or the tail word) that is not 8-byte aligned and
// sits 4 bytes before the ring's end. Reading or writing an 8-byte record word there crosses into the guard page.
// Run in a child so that a crash fails this test instead of the whole suite.
TEST_F(UnitErrors, MisalignedGroupCursorIsBadSegmentNotACrash) {
  auto topic = mq::Topic::create("cursor", {.capacity = mq::kMinCapacity}).value();
  ASSERT_TRUE(topic.create_group("g"));
  const std::size_t next_at = d::kGroupTableOffset + 0 * d::kGroupBlockBytes + offsetof(d::GroupBlock, next);
  poke<std::uint64_t>(shm_file(ns(), "cursor"), next_at, mq::kMinCapacity - 4);
  mqtest::Child child([&] {
    auto t = mq::Topic::open("cursor");
    if (!t) return 10;
    auto c = mq::Consumer::make(*t, {.group = "g"});
    if (!c) return 11;
    auto m = c->poll(kNow);
    if (m) return 12;
    std::fprintf(stderr, "poll: %s\n", m.error().what());
    return m.error().code() == mq::Errc::bad_segment ? 0 : 13;
  });
  EXPECT_EQ(child.wait(), 0) << "128 + 11 is SIGSEGV: the reader touched the guard page";
}

TEST_F(UnitErrors, MisalignedTailIsBadSegmentNotACrash) {
  auto topic = mq::Topic::create("tail", {.capacity = mq::kMinCapacity}).value();
  poke<std::uint64_t>(shm_file(ns(), "tail"), offsetof(d::SegmentHeader, tail), 3 * mq::kMinCapacity - 4);
  mqtest::Child child([&] {
    auto t = mq::Topic::open("tail");
    if (!t) return 0;  // refusing the segment at open is fine too
    auto p = mq::Producer::make(*t);
    if (!p) return 11;
    auto r = p->publish(bytes("0123456789"));
    if (r) return 12;
    std::fprintf(stderr, "publish: %s\n", r.error().what());
    return r.error().code() == mq::Errc::bad_segment ? 0 : 13;
  });
  EXPECT_EQ(child.wait(), 0) << "128 + 11 is SIGSEGV: the producer wrote into the guard page";
}

// ---------------------------------------------------------------------------------------------------------------
// Fork

TEST_F(UnitErrors, HandlesRefuseToWorkInAForkChild) {
  auto topic = mq::Topic::create("fork", {.capacity = mq::kMinCapacity}).value();
  mq::Producer producer(topic);
  mq::Consumer consumer(topic, {.group = "g", .start = mq::Start::earliest, .auto_ack = false});
  ASSERT_EQ(*producer.publish(bytes("before")), 0u);
  auto held = consumer.poll(kNow);
  ASSERT_TRUE(held) << held.error().what();

  mqtest::Child child([&] {
    auto p = producer.publish(bytes("child"));
    if (p || p.error().code() != mq::Errc::wrong_process) return 1;
    auto c = producer.claim(8);
    if (c || c.error().code() != mq::Errc::wrong_process) return 2;
    auto m = consumer.poll(kNow);
    if (m || m.error().code() != mq::Errc::wrong_process) return 3;
    auto a = consumer.ack(std::move(*held));
    if (a || a.error().code() != mq::Errc::wrong_process) return 4;
    auto all = consumer.ack_all();
    if (all || all.error().code() != mq::Errc::wrong_process) return 5;
    {
      // Destroying the parent's handles here must leave the parent's slots alone.
      mq::Producer gone_p = std::move(producer);
      mq::Consumer gone_c = std::move(consumer);
    }
    // A handle made in the child works (the mapping is shared).
    auto mine = mq::Producer::make(topic);
    if (!mine) return 6;
    auto r = mine->publish(bytes("from child"));
    if (!r || *r != 1) return 7;
    return 0;
  });
  ASSERT_EQ(child.wait(), 0);

  const auto info = topic.info();
  EXPECT_EQ(info.producers, 1u) << "the parent's producer slot survived the child";
  ASSERT_EQ(info.groups.size(), 1u);
  EXPECT_EQ(info.groups[0].members, 1u) << "the parent's member slot survived the child";
  EXPECT_EQ(info.groups[0].unacked, 1u);
  auto after = producer.publish(bytes("after"));
  ASSERT_TRUE(after) << after.error().what();
  EXPECT_EQ(*after, 2u);
  ASSERT_TRUE(consumer.ack(std::move(*held)));
  auto one = consumer.poll(kNow);
  ASSERT_TRUE(one) << one.error().what();
  EXPECT_EQ(one->offset(), 1u);
  EXPECT_EQ(text(one->payload()), "from child");
  auto two = consumer.poll(kNow);
  ASSERT_TRUE(two) << two.error().what();
  EXPECT_EQ(text(two->payload()), "after");
}

// ---------------------------------------------------------------------------------------------------------------
// Storage::file

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mq-unit-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (path_.empty()) return;
    if (DIR* d = ::opendir(path_.c_str())) {
      while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") ::unlink((path_ + "/" + name).c_str());
      }
      ::closedir(d);
    }
    ::rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_F(UnitErrors, FileStorageTopicIsConsumedAfterReopen) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty()) << std::strerror(errno);
  const mq::OpenOptions where{mq::Storage::file, dir.path()};
  {
    auto topic = mq::Topic::create("durable", {.capacity = mq::kMinCapacity,
                                               .storage = mq::Storage::file,
                                               .directory = dir.path(),
                                               .groups = {"svc"}});
    ASSERT_TRUE(topic) << topic.error().what();
    EXPECT_EQ(topic->info().storage, mq::Storage::file);
    mq::Producer producer(*topic);
    const mq::Header headers[] = {{"h", bytes("1")}, {"h", bytes("2")}};
    for (Offset i = 0; i < 5; ++i) {
      const std::string payload = "invite-" + std::to_string(i);
      auto r = producer.publish(mq::Record{bytes(payload), bytes("k" + std::to_string(i)), headers, std::int64_t(i)});
      ASSERT_TRUE(r) << r.error().what();
    }
    ASSERT_TRUE(topic->flush());
  }  // every handle closed
  struct stat st{};
  ASSERT_EQ(::stat((dir.path() + "/mq@" + ns() + "@durable").c_str(), &st), 0) << "the file is where it was asked";
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_FALSE(mq::Topic::open("durable")) << "not an shm topic";
  auto listed = mq::Topic::list(where);
  ASSERT_TRUE(listed) << listed.error().what();
  EXPECT_EQ(*listed, std::vector<std::string>{"durable"});

  auto topic = mq::Topic::open("durable", where);
  ASSERT_TRUE(topic) << topic.error().what();
  EXPECT_EQ(topic->info().storage, mq::Storage::file);
  EXPECT_EQ(topic->info().latest, 5u);
  {
    mq::Consumer consumer(*topic, {.group = "svc", .start = mq::Start::latest, .auto_ack = false});
    for (Offset i = 0; i < 5; ++i) {
      auto m = consumer.poll(kNow);
      ASSERT_TRUE(m) << m.error().what();
      EXPECT_EQ(m->offset(), i);
      EXPECT_EQ(text(m->payload()), "invite-" + std::to_string(i));
      ASSERT_TRUE(m->key());
      EXPECT_EQ(text(*m->key()), "k" + std::to_string(i));
      EXPECT_EQ(m->timestamp_ns(), static_cast<std::int64_t>(i));
      std::vector<std::string> values;
      for (const mq::Header h : m->headers()) values.push_back(std::string(h.name) + "=" + text(h.value));
      EXPECT_EQ(values, (std::vector<std::string>{"h=1", "h=2"}));
      ASSERT_TRUE(consumer.ack(std::move(*m)));
    }
    auto none = consumer.poll(kNow);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code(), mq::Errc::timed_out);
  }
  auto twice = mq::Topic::create("durable", {.storage = mq::Storage::file, .directory = dir.path()});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), mq::Errc::exists);
  EXPECT_TRUE(mq::Topic::remove("durable", where));
  auto gone = mq::Topic::open("durable", where);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), mq::Errc::not_found);
}

}  // namespace

namespace {

// A file-backed topic keeps its producer slots across a reboot. An owner id of another boot is dead even when a
// process of this boot has its pid and start time (as early-boot services often do): here, this very process.
TEST_F(UnitErrors, OwnerOfAnotherBootIsDeadEvenWithALivePidAndStartTime) {
  const std::uint64_t self = d::self_owner();
  EXPECT_FALSE(d::owner_dead(self));
  const std::uint64_t other_boot = self ^ (std::uint64_t{1} << d::kOwnerBootShift);
  EXPECT_EQ(d::owner_pid(other_boot), ::getpid());
  EXPECT_TRUE(d::owner_dead(other_boot));

  auto topic = mq::Topic::create("rebooted", {.capacity = mq::kMinCapacity});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g", mq::Start::earliest));
  mq::Producer producer(*topic);
  auto claim = producer.claim(100);
  ASSERT_TRUE(claim);
  // What the segment looks like after a reboot: this claim's owner ran in the boot before.
  auto& slot = d::TestAccess::slot(producer);
  slot.owner.store(other_boot);
  mq::Producer after(*topic);
  ASSERT_TRUE(after.publish(bytes("after the reboot")));
  EXPECT_EQ(topic->recover_dead(), 1u) << "the claim of the previous boot was finished as a skip record";
  mq::Consumer consumer(*topic, {.group = "g", .start = mq::Start::earliest});
  auto m = consumer.poll(kNow);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->offset(), 1u);
  EXPECT_EQ(text(m->payload()), "after the reboot");
  auto late = std::move(*claim).commit();
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code(), mq::Errc::revoked);
}

}  // namespace
