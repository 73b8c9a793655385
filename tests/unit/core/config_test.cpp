// The one reader of TROUPE_* knobs (troupe/core/config.hpp): defaults, good values, and a
// ValueError naming the variable for every bad one.
#include "troupe/core/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "troupe/core/error.hpp"

using namespace std::chrono_literals;
using troupe::Settings;

namespace {

// A fake environment for read_settings().
Settings read(const std::map<std::string, std::string>& env) {
  return troupe::read_settings([&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

// what() of the ValueError that NAME=VALUE raises; "" when it is accepted.
std::string error_of(const char* name, const char* value) {
  try {
    (void)read({{name, value}});
  } catch (const troupe::ValueError& e) {
    return e.what();
  }
  return "";
}

struct KnobCase {
  const char* name;
  const char* good;
  std::function<bool(const Settings&)> holds_good;
  std::vector<const char*> bad;
};

const std::vector<KnobCase>& knobs() {
  static const std::vector<KnobCase> cases = {
      {"TROUPE_THREADS",
       "7",
       [](const Settings& s) { return s.threads == std::size_t{7}; },
       {"0", "-2", "four", "3x", "65537", "1.5", "99999999999999999999999"}},
      {"TROUPE_QUIET", "1", [](const Settings& s) { return s.quiet; }, {"2", "yes", "-1", "true"}},
      {"TROUPE_PRINT_SETTINGS", "1", [](const Settings& s) { return s.print_settings; }, {"2", "on", "x"}},
      {"TROUPE_SPIN_US", "0", [](const Settings& s) { return s.pool_spin == 0us; }, {"-1", "abc", "10000001", "5us"}},
      {"TROUPE_ENGINE_BACKOFF_US",
       "20",
       [](const Settings& s) { return s.engine_backoff == 20us; },
       {"0", "-5", "fast"}},
      {"TROUPE_ENGINE_LINGER_US", "0", [](const Settings& s) { return s.engine_linger == 0us; }, {"-1", "1e3"}},
      {"TROUPE_WAIT_BACKOFF_US", "64", [](const Settings& s) { return s.wait_backoff == 64us; }, {"0", "-64", "x"}},
      {"TROUPE_SHARED_CORES",
       "0",
       [](const Settings& s) { return s.shared_cores == std::size_t{0}; },
       {"2", "yes", "on", "automatic"}},
      {"TROUPE_WIRE_LOCAL", "1", [](const Settings& s) { return s.wire_local; }, {"2", "yes", "on"}},
      {"TROUPE_STARTUP_TIMEOUT_MS",
       "2500",
       [](const Settings& s) { return s.startup_timeout == std::chrono::milliseconds(2500); },
       {"0", "-1", "2s", "86400001"}},
      {"TROUPE_FAILURE_TIMEOUT_MS",
       "0",
       [](const Settings& s) { return s.failure_timeout == std::chrono::milliseconds(0); },
       {"-1", "1.5", "off", "86400001"}},
      {"TROUPE_SPAWN_WORKERS",
       "2",
       [](const Settings& s) { return s.spawn_workers == 2; },
       {"-1", "two", "4097", "auto", "1.5"}},
      {"TROUPE_CORO_STALL_MS",
       "250",
       [](const Settings& s) { return s.coro_stall == std::chrono::milliseconds(250); },
       {"-1", "0.5", "on", "86400001"}},
      {"TROUPE_PROGRESS", "2", [](const Settings& s) { return s.progress == 2; }, {"3", "-1", "on", "yes"}},
  };
  return cases;
}

}  // namespace

TEST(CoreConfig, DefaultsWhenNothingIsSet) {
  const Settings s = read({});
  EXPECT_FALSE(s.threads.has_value());
  EXPECT_FALSE(s.quiet);
  EXPECT_FALSE(s.print_settings);
  EXPECT_EQ(s.pool_spin, 50us);
  EXPECT_EQ(s.engine_backoff, 1000us);
  EXPECT_EQ(s.engine_linger, 200us);
  EXPECT_EQ(s.wait_backoff, 500us);
  EXPECT_EQ(s.startup_timeout, std::chrono::milliseconds(60'000));
  EXPECT_EQ(s.failure_timeout, std::chrono::milliseconds(10'000));
  EXPECT_EQ(s.coro_stall, std::chrono::milliseconds(0));
  EXPECT_FALSE(s.wire_local);
  EXPECT_FALSE(s.shared_cores.has_value());
  EXPECT_TRUE(s.trace.empty());
  EXPECT_EQ(s.progress, 0U);
  EXPECT_TRUE(s.from_env.empty());
}

// One rule for every knob: unset means the default; a variable that is set must satisfy the
// knob's rule, and an empty or blank one is an error too (it is most often a script's
// `TROUPE_THREADS=$N` with N unset, which must not silently run with the default).
TEST(CoreConfig, EveryKnobRejectsAnEmptyValueNamingTheVariable) {
  for (const auto& k : knobs()) {
    for (const char* empty : {"", " ", "\t\n"}) {
      const std::string what = error_of(k.name, empty);
      EXPECT_EQ(what.rfind(std::string(k.name) + " is set but empty; unset it for the default (", 0), 0U)
          << k.name << "='" << empty << "' gave: '" << what << "'";
      EXPECT_NE(what.find(" or set it to "), std::string::npos) << what;
    }
  }
  EXPECT_EQ(error_of("TROUPE_THREADS", ""),
            "TROUPE_THREADS is set but empty; unset it for the default (auto), or set it to an integer in "
            "[1, 65536] or auto");
  EXPECT_EQ(error_of("TROUPE_SPIN_US", ""),
            "TROUPE_SPIN_US is set but empty; unset it for the default (50), or set it to an integer in "
            "[0, 10000000] (microseconds)");
}

// Overflow, garbage and negative values get the same message for every knob: the variable,
// the value and the accepted range.
TEST(CoreConfig, EveryKnobRejectsOverflowGarbageAndNegativeValuesTheSameWay) {
  const char* const common[] = {"99999999999999999999",  // > 2^64
                                "18446744073709551616",  // 2^64
                                "18446744073709551615",  // 2^64 - 1: fits size_t, above every range
                                "4294967297",           "-1", "-0", "+1", "1 2", "0x10", "1e3", "1.0", "nan", "\x01"};
  for (const auto& k : knobs()) {
    for (const char* bad : common) {
      const std::string what = error_of(k.name, bad);
      EXPECT_EQ(what.rfind(std::string(k.name) + " must be ", 0), 0U) << "accepted " << k.name << "=" << bad;
      EXPECT_NE(what.find(std::string(", got '") + bad + "'"), std::string::npos) << what;
      EXPECT_TRUE(what.find(" must be 0 or 1") != std::string::npos ||
                  what.find(" must be an integer in [") != std::string::npos)
          << what;
    }
  }
}

TEST(CoreConfig, EveryKnobTakesAGoodValue) {
  for (const auto& k : knobs()) {
    EXPECT_FALSE(k.holds_good(read({}))) << k.name << ": the good value must differ from the default";
    const Settings s = read({{k.name, k.good}});
    EXPECT_TRUE(k.holds_good(s)) << k.name << "=" << k.good;
    EXPECT_EQ(s.from_env, std::vector<std::string>{k.name});
  }
}

// A knob whose default is a rule (nullopt) takes the word "auto" for that rule, as when unset,
// and says where it came from.
TEST(CoreConfig, AutoMeansTheRuleForKnobsThatHaveOne) {
  const Settings s = read({{"TROUPE_THREADS", "auto"}, {"TROUPE_SHARED_CORES", " auto "}});
  EXPECT_FALSE(s.threads.has_value());
  EXPECT_FALSE(s.shared_cores.has_value());
  EXPECT_EQ(s.from_env.size(), 2U);
  EXPECT_EQ(read({{"TROUPE_SHARED_CORES", "1"}}).shared_cores, std::size_t{1});
  EXPECT_NE(error_of("TROUPE_SPIN_US", "auto"), "");  // a knob with a number for default does not
}

TEST(CoreConfig, SpacesAroundANumberAreAccepted) {
  EXPECT_EQ(read({{"TROUPE_THREADS", " 5\n"}}).threads, std::size_t{5});
  EXPECT_EQ(read({{"TROUPE_SPIN_US", "\t12 "}}).pool_spin, 12us);
}

TEST(CoreConfig, EveryBadValueIsAValueErrorNamingTheVariableTheValueAndTheRule) {
  for (const auto& k : knobs()) {
    for (const char* bad : k.bad) {
      const std::string what = error_of(k.name, bad);
      EXPECT_NE(what.find(k.name), std::string::npos) << "accepted " << k.name << "=" << bad << "; " << what;
      EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos) << what;
      EXPECT_NE(what.find(" must be "), std::string::npos) << what;
    }
  }
}

TEST(CoreConfig, TheRuleIsInTheMessage) {
  EXPECT_EQ(error_of("TROUPE_THREADS", "0"), "TROUPE_THREADS must be an integer in [1, 65536] or auto, got '0'");
  EXPECT_EQ(error_of("TROUPE_SHARED_CORES", "on"), "TROUPE_SHARED_CORES must be 0 or 1 or auto, got 'on'");
  EXPECT_EQ(error_of("TROUPE_QUIET", "yes"), "TROUPE_QUIET must be 0 or 1, got 'yes'");
  EXPECT_EQ(error_of("TROUPE_ENGINE_BACKOFF_US", "0"),
            "TROUPE_ENGINE_BACKOFF_US must be an integer in [1, 10000000] (microseconds), got '0'");
}

TEST(CoreConfig, DescribeHasOneLinePerKnobWithValueDefaultAndOrigin) {
  const std::string d = troupe::describe(read({{"TROUPE_SPIN_US", "7"}}));
  std::size_t lines = 0;
  for (char c : d) lines += c == '\n';
  EXPECT_EQ(lines, knobs().size() + 1);  // + TROUPE_TRACE, the knob that takes text (below)
  for (const auto& k : knobs()) EXPECT_NE(d.find(std::string(k.name) + "="), std::string::npos) << k.name;
  EXPECT_NE(d.find("TROUPE_SPIN_US=7 (default 50, from env)"), std::string::npos) << d;
  EXPECT_NE(d.find("TROUPE_THREADS=auto (default auto, from default)"), std::string::npos) << d;
  EXPECT_NE(d.find("TROUPE_ENGINE_BACKOFF_US=1000 (default 1000, from default)"), std::string::npos) << d;
}

TEST(CoreConfig, KnobStatesAreWhatDescribePrints) {
  const Settings s = read({{"TROUPE_SPIN_US", "7"}});
  const auto states = troupe::knob_states(s);
  // Every knob of the numeric table above, plus TROUPE_TRACE (a path: TraceTakesAPath).
  ASSERT_EQ(states.size(), knobs().size() + 1);
  const std::string d = troupe::describe(s);
  EXPECT_EQ(static_cast<std::size_t>(std::count(d.begin(), d.end(), '\n')), states.size()) << d;
  for (const auto& k : states) {
    EXPECT_NE(d.find(k.name + "=" + k.value + " (default " + k.default_value), std::string::npos) << k.name;
    EXPECT_EQ(k.from_env, k.name == "TROUPE_SPIN_US") << k.name;
    EXPECT_FALSE(k.effect.empty()) << k.name;
    if (k.name == "TROUPE_SPIN_US") {
      EXPECT_EQ(k.value, "7");
      EXPECT_EQ(k.default_value, "50");
    }
  }
}

// TROUPE_TRACE takes a path verbatim (spaces kept); empty is an error like every knob's.
TEST(CoreConfig, TraceTakesAPath) {
  EXPECT_EQ(read({}).trace, "");
  const Settings s = read({{"TROUPE_TRACE", "/tmp/my trace.json"}});
  EXPECT_EQ(s.trace, "/tmp/my trace.json");
  EXPECT_NE(troupe::describe(s).find("TROUPE_TRACE=/tmp/my trace.json (default off, from env)"), std::string::npos);
  EXPECT_EQ(error_of("TROUPE_TRACE", " "),
            "TROUPE_TRACE is set but empty; unset it for the default (off), or set it to a file path");
}

TEST(CoreConfig, SettingsIsCachedUntilReloaded) {
  ::setenv("TROUPE_WAIT_BACKOFF_US", "321", 1);
  const Settings& first = troupe::settings();
  ::setenv("TROUPE_WAIT_BACKOFF_US", "654", 1);
  EXPECT_EQ(&troupe::settings(), &first);  // read once
  const Settings& second = troupe::detail::reload_settings();
  EXPECT_EQ(&troupe::settings(), &second);
  EXPECT_EQ(second.wait_backoff, 654us);
  EXPECT_EQ(first.wait_backoff, 321us);  // still valid
  ::setenv("TROUPE_WAIT_BACKOFF_US", "0", 1);
  EXPECT_THROW((void)troupe::detail::reload_settings(), troupe::ValueError);
  EXPECT_EQ(&troupe::settings(), &second);  // a failed reload keeps what was there
  ::unsetenv("TROUPE_WAIT_BACKOFF_US");
}

TEST(CoreConfig, ParseCount) {
  using troupe::detail::parse_count;
  EXPECT_EQ(parse_count("42"), std::size_t{42});
  EXPECT_EQ(parse_count(" 3 "), std::size_t{3});
  EXPECT_EQ(parse_count("0"), std::size_t{0});
  EXPECT_FALSE(parse_count(nullptr));
  EXPECT_FALSE(parse_count(""));
  EXPECT_FALSE(parse_count("  "));
  EXPECT_FALSE(parse_count("-1"));
  EXPECT_FALSE(parse_count("4 2"));
  EXPECT_FALSE(parse_count("0x10"));
}
