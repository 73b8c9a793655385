// The trace recorder (troupe/runtime/detail/trace.hpp) without MPI: off records nothing,
// threads record concurrently without losing events, names are escaped, and the file is
// the Chrome Trace Event Format's JSON object form. The whole trace of an app at 2 ranks is
// checked by tests/trace/check_trace.py (ctest mpi.trace.*).
#include "troupe/runtime/detail/trace.hpp"
#include "troupe/core/detail/text.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace trace = troupe::detail::trace;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Trace, OffRecordsNothing) {
  trace::begin(0, "rank 0");
  trace::end();
  ASSERT_FALSE(trace::on());
  { trace::Span span("task", "pool"); }
  trace::complete("task", "pool", 1, 2);
  trace::flow(true, 7, 1);
  EXPECT_EQ(trace::event_count(), 0u);
}

TEST(Trace, ASpanIsACompleteEventWithItsArguments) {
  trace::begin(3, "rank 3 (host)");
  {
    trace::Span span("remote task", "executor");
    span.arg("from", 1);
    span.arg("bytes", 42);
  }
  trace::end();
  EXPECT_EQ(trace::event_count(), 1u);
  const std::string json = trace::events_json(0);
  EXPECT_NE(json.find("\"name\":\"remote task\",\"cat\":\"executor\",\"ph\":\"X\",\"pid\":3,\"tid\":30001,\"ts\":"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"args\":{\"from\":1,\"bytes\":42}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"name\":\"process_name\",\"ph\":\"M\",\"pid\":3,\"tid\":30001,\"args\":{\"name\":\"rank 3 "
                      "(host)\",\"clock_offset_us\":0.000,\"clock_error_us\":0.000}}"),
            std::string::npos)
      << json;
}

TEST(Trace, ManyThreadsRecordConcurrentlyOnTheirOwnLanes) {
  constexpr int kThreads = 8;
  constexpr int kEach = 10000;  // more than one block of a buffer
  trace::begin(0, "rank 0");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      trace::name_thread("worker " + std::to_string(t));
      for (int i = 0; i < kEach; ++i) {
        const auto t0 = trace::now_ns();
        trace::complete("task", "pool", t0, t0 + 1, {{"i", i}});
      }
    });
  }
  for (auto& th : threads) th.join();
  trace::end();
  EXPECT_EQ(trace::event_count(), static_cast<std::size_t>(kThreads) * kEach);
  const std::string json = trace::events_json(0);
  EXPECT_EQ(count(json, "\"ph\":\"X\""), static_cast<std::size_t>(kThreads) * kEach);
  EXPECT_EQ(count(json, "\"name\":\"thread_name\""), static_cast<std::size_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_NE(json.find("\"name\":\"worker " + std::to_string(t) + "\""), std::string::npos);
  }
}

TEST(Trace, ANewSessionStartsEmpty) {
  trace::begin(0, "rank 0");
  trace::complete("task", "pool", 1, 2);
  trace::end();
  EXPECT_EQ(trace::event_count(), 1u);
  trace::begin(0, "rank 0");
  EXPECT_EQ(trace::event_count(), 0u);
  trace::complete("task", "pool", 1, 2);
  trace::end();
  EXPECT_EQ(trace::event_count(), 1u);
}

TEST(Trace, EscapesNamesForJson) {
  std::string out;
  troupe::detail::append_json_string(out, std::string("a\"b\\c\nd\te\x01"
                                                      "f"));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\te\\u0001f\"");
  trace::begin(1, "rank 1 (\"odd\\host\")");
  trace::name_thread("worker \"0\"");
  trace::complete("task", "pool", 1, 2);
  trace::end();
  const std::string json = trace::events_json(0);
  EXPECT_NE(json.find("\"rank 1 (\\\"odd\\\\host\\\")\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"worker \\\"0\\\"\""), std::string::npos) << json;
  trace::name_thread("main");
}

TEST(Trace, TimestampsAreMicrosecondsFromTheOriginAfterTheOffset) {
  trace::begin(0, "rank 0", 5'000);  // this rank's clock is 5 us behind rank 0's
  trace::complete("task", "pool", 10'000, 12'500);
  trace::flow(true, 99, 10'000);
  trace::end();
  const std::string json = trace::events_json(1'000);
  EXPECT_NE(json.find("\"ts\":14.000,\"dur\":2.500"), std::string::npos) << json;
  EXPECT_NE(json.find("\"ph\":\"s\",\"id\":99,"), std::string::npos) << json;
}

TEST(Trace, WritesTheJsonObjectForm) {
  const std::string path = ::testing::TempDir() + "troupe_trace_test.json";
  trace::begin(0, "rank 0");
  trace::complete("task", "pool", 1, 2);
  trace::end();
  ASSERT_TRUE(trace::write_trace_file(path, {trace::events_json(0), ""}));
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  EXPECT_EQ(s.rfind("{\"traceEvents\":[\n", 0), 0u) << s;
  EXPECT_NE(s.find("],\"displayTimeUnit\":\"ms\""), std::string::npos) << s;
  EXPECT_EQ(count(s, "\"ph\":\"X\""), 1u);
  std::remove(path.c_str());
  EXPECT_FALSE(trace::write_trace_file("/nonexistent-dir/x/trace.json", {}));
}
