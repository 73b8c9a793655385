// troupe inside a Boost.MPI program: a Runtime and Executors on boost::mpi::communicator
// world and on a split one; a Boost.Serialization type through Executor::submit (argument and
// result) and through a cross-rank Queue; Boost.MPI's own collectives and point-to-point
// messages on the host's communicator interleaved with troupe phases, on the very tags troupe
// uses, with nothing crossing over; troupe never finalizes the MPI that Boost.MPI owns.
#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/mpi/nonblocking.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "troupe/across/queue.hpp"
#include "troupe/core/deadline.hpp"
#include "troupe/core/detail/wait.hpp"
#include "troupe/executor/executor.hpp"
#include "troupe/runtime/detail/arrival.hpp"
#include "troupe/runtime/runtime.hpp"
#include "troupe/engine/engine.hpp"
#include "troupe/wire/boost.hpp"

#include "mpi_test_util.hpp"

using namespace std::chrono_literals;
using troupe::Scope;
using troupe_test::quiet;
namespace mpi = boost::mpi;

namespace {

// A type made serializable for Boost.MPI only (no troupe_fields): troupe's wire sends it
// through troupe/wire/boost.hpp.
struct Sample {
  int id = 0;
  std::string name;
  std::vector<double> v;
  template <class Archive>
  void serialize(Archive& ar, const unsigned /*version*/) {
    ar& id& name& v;
  }
  bool operator==(const Sample&) const = default;
};

// Names built with append, not "s" + std::to_string(...): g++ 12 -O3 warns falsely
// (-Wrestrict) on that operator+ once inlined.
std::string tagged(const char* prefix, int a) {
  std::string s(prefix);
  s.append(std::to_string(a));
  return s;
}

Sample make_sample(int id) { return Sample{id, tagged("s", id), std::vector<double>(id % 5, 0.5 * id)}; }

// Sum of v, squared id: exact in doubles for the sizes used here.
double weight(const Sample& s) { return std::accumulate(s.v.begin(), s.v.end(), 0.0) + s.id * s.id; }

double serial_weight(int first, int n, int stride) {
  double w = 0;
  for (int i = first; i < n; i += stride) w += weight(make_sample(i));
  return w;
}

constexpr auto kWeigh = [](const Sample& s) { return weight(s); };

troupe::ExecutorOptions bounded(std::optional<MPI_Comm> comm = std::nullopt) {
  troupe::ExecutorOptions o;
  o.comm = comm;
  o.startup_timeout = 60s;
  o.shutdown_timeout = 60s;
  return o;
}

// Waits, bounded, for a Boost.MPI request with the one wait loop of troupe (no sleep loop).
template <class Request>
bool wait_request(Request& req, std::chrono::seconds timeout) {
  troupe::detail::WaitWord word;
  return word.wait([&] { return static_cast<bool>(req.test()); },
                   troupe::Deadline::after(timeout, "boost_mpi_test: host message"));
}

}  // namespace

// A Runtime made from boost::mpi::communicator (it converts to MPI_Comm): it has the world's
// ranks, works on a congruent duplicate, adopts MPI, and an Executor on it is right.
TEST(BoostMpi, RuntimeAndExecutorOnBoostWorld) {
  mpi::communicator world;
  troupe::Runtime rt(world, quiet());
  EXPECT_EQ(rt.rank(), world.rank());
  EXPECT_EQ(rt.size(), world.size());
  EXPECT_FALSE(rt.owns_mpi());
  int cmp = MPI_UNEQUAL;
  MPI_Comm_compare(rt.comm(), world, &cmp);
  EXPECT_EQ(cmp, MPI_CONGRUENT);  // a duplicate: same group, separate matching

  constexpr int kN = 200;
  double got = 0;
  {
    troupe::Executor ex(rt, bounded());
    if (ex.is_root()) {
      std::vector<Sample> xs;
      for (int i = 0; i < kN; ++i) xs.push_back(make_sample(i));
      got = ex.map_reduce(kWeigh, std::plus<double>{}, xs, {.chunksize = 7});
    }
    ex.shutdown();
  }
  mpi::broadcast(world, got, 0);
  EXPECT_EQ(got, serial_weight(0, kN, 1));
}

// Two executors on the two halves of world.split() (at 4 ranks: {0, 2} and {1, 3}), each
// right on its own half; then a Runtime made from the split communicator itself.
TEST(BoostMpi, ExecutorsOnSplitHalves) {
  mpi::communicator world;
  const int color = world.rank() % 2;
  mpi::communicator half = world.split(color);
  constexpr int kN = 120;
  {
    troupe::Runtime rt(world, quiet());
    troupe::Executor ex(rt, bounded(static_cast<MPI_Comm>(half)));
    EXPECT_EQ(ex.size(), half.size());
    EXPECT_EQ(ex.rank(), half.rank());
    // Root-driven on each half: its root maps the samples of its color.
    double got = -1;
    if (ex.is_root()) {
      std::vector<Sample> xs;
      for (int i = color; i < kN; i += 2) xs.push_back(make_sample(i));
      got = ex.map_reduce(kWeigh, std::plus<double>{}, xs, {.chunksize = 5});
    }
    ex.shutdown();
    mpi::broadcast(half, got, 0);
    EXPECT_EQ(got, serial_weight(color, kN, 2)) << "half " << color;
    // SPMD on each half: every rank of it maps its share; everyone gets the half's total.
    troupe::Executor spmd(rt, bounded(static_cast<MPI_Comm>(half)));
    std::vector<Sample> mine;
    for (int i = color + 2 * half.rank(); i < kN; i += 2 * half.size()) mine.push_back(make_sample(i));
    const double all = spmd.map_reduce_all(kWeigh, std::plus<double>{}, mine, 0.0);
    EXPECT_EQ(all, serial_weight(color, kN, 2)) << "half " << color;
    spmd.shutdown();
  }
  {
    troupe::Runtime rt(half, quiet());  // a Runtime on the split communicator itself
    EXPECT_EQ(rt.size(), half.size());
    troupe::Executor ex(rt, bounded());
    std::vector<Sample> mine;
    for (int i = color + 2 * half.rank(); i < kN; i += 2 * half.size()) mine.push_back(make_sample(i));
    EXPECT_EQ(ex.map_reduce_all(kWeigh, std::plus<double>{}, mine, 0.0), serial_weight(color, kN, 2));
    ex.shutdown();
  }
}

// A Boost.Serialization type as the argument and the result of submit_to every rank, and as
// the item of a cross-rank Queue.
TEST(BoostMpi, BoostSerializableTypeThroughSubmitAndQueue) {
  mpi::communicator world;
  troupe::Runtime rt(world, quiet());
  {
    troupe::Executor ex(rt, bounded());
    if (ex.is_root()) {
      std::vector<troupe::Future<Sample>> fs;
      for (int r = 0; r < ex.size(); ++r) {
        fs.push_back(ex.submit_to(
            r,
            [](Sample s, int where) {
              s.name.append(tagged("@", where)).append(tagged("/", troupe::Runtime::current()->rank()));
              s.v.push_back(where);
              s.id *= 2;
              return s;
            },
            make_sample(10 + r), r));
      }
      for (int r = 0; r < ex.size(); ++r) {
        Sample want = make_sample(10 + r);
        want.name.append(tagged("@", r)).append(tagged("/", r));  // ran on rank r
        want.v.push_back(r);
        want.id *= 2;
        EXPECT_EQ(fs[static_cast<std::size_t>(r)].result(60s), want) << "rank " << r;
      }
    }
    ex.shutdown();
  }
  // Every rank puts 3 samples on the queue hosted by the last rank; rank 0 takes them all.
  troupe::Queue<Sample> q(Scope::Ranks, 0, rt.size() - 1);
  for (int k = 0; k < 3; ++k) q.put(make_sample(100 * rt.rank() + k), 60s);
  if (rt.rank() == 0) {
    std::vector<int> seen(static_cast<std::size_t>(3 * rt.size()), 0);
    for (int k = 0; k < 3 * rt.size(); ++k) {
      const Sample s = q.get(60s);
      ASSERT_EQ(s, make_sample(s.id));  // arrived whole
      const int slot = (s.id / 100) * 3 + s.id % 100;
      ASSERT_TRUE(slot >= 0 && slot < 3 * rt.size()) << s.id;
      ++seen[static_cast<std::size_t>(slot)];
    }
    for (int c : seen) EXPECT_EQ(c, 1);
  }
  world.barrier();  // the queue's host stays until rank 0 has taken everything
}

// The host's own messages on world, on the tags troupe uses for its own traffic (on its
// duplicate), are never taken by troupe, and troupe's are never seen by the host; Boost.MPI
// collectives on world run between troupe collectives with the executor alive.
TEST(BoostMpi, HostMessagesAndCollectivesInterleaveWithTroupePhases) {
  mpi::communicator world;
  const int rank = world.rank();
  const int size = world.size();
  const int next = (rank + 1) % size;
  const int prev = (rank + size - 1) % size;
  const std::vector<int> tags = {0, 7, troupe::engine::Engine::kTag, troupe::detail::kArrivalTag};

  // 1. The host posts its messages before troupe starts: an int and a Sample per tag.
  std::vector<int> ints;
  std::vector<Sample> samples;
  for (int t : tags) {
    ints.push_back(1000 * rank + t);
    samples.push_back(make_sample(rank * 10 + static_cast<int>(samples.size())));
  }
  std::vector<mpi::request> sends;
  for (std::size_t i = 0; i < tags.size(); ++i) {
    sends.push_back(world.isend(next, tags[i], ints[i]));
    sends.push_back(world.isend(next, tags[i], samples[i]));
  }

  // 2. troupe phases on the same ranks, with Boost.MPI collectives between them.
  constexpr int kN = 96;
  double phase1 = 0, phase2 = 0;
  {
    troupe::Runtime rt(world, quiet());
    troupe::Executor ex(rt, bounded());
    std::vector<Sample> mine;
    for (int i = rank; i < kN; i += size) mine.push_back(make_sample(i));
    phase1 = ex.map_reduce_all(kWeigh, std::plus<double>{}, mine, 0.0);
    // Boost.MPI collectives on world while troupe's executor lives (its progress thread
    // drives MPI on troupe's duplicate meanwhile).
    const int ranks = mpi::all_reduce(world, 1, std::plus<int>());
    EXPECT_EQ(ranks, size);
    double bcast = rank == 0 ? phase1 : -1;
    mpi::broadcast(world, bcast, 0);
    EXPECT_EQ(bcast, phase1);
    std::vector<double> gathered;
    mpi::gather(world, phase1, gathered, 0);
    if (rank == 0) {
      for (double g : gathered) EXPECT_EQ(g, phase1);
    }
    phase2 = ex.map_reduce_all([](const Sample& s) { return s.id; }, std::plus<int>{}, mine, 0);
    ex.shutdown();
  }
  EXPECT_EQ(phase1, serial_weight(0, kN, 1));
  EXPECT_EQ(phase2, kN * (kN - 1) / 2);

  // 3. The host's messages are all still there, in order, whole: troupe took none.
  for (std::size_t i = 0; i < tags.size(); ++i) {
    int x = -1;
    Sample s;
    auto r1 = world.irecv(prev, tags[i], x);
    ASSERT_TRUE(wait_request(r1, 60s)) << "int on tag " << tags[i];
    auto r2 = world.irecv(prev, tags[i], s);
    ASSERT_TRUE(wait_request(r2, 60s)) << "Sample on tag " << tags[i];
    EXPECT_EQ(x, 1000 * prev + tags[i]);
    EXPECT_EQ(s, make_sample(prev * 10 + static_cast<int>(i)));
  }
  for (auto& r : sends) ASSERT_TRUE(wait_request(r, 60s));
  // 4. ...and nothing else arrived on world: troupe sent none of its traffic there.
  world.barrier();
  EXPECT_FALSE(world.iprobe(mpi::any_source, mpi::any_tag).has_value());
  world.barrier();
}

// troupe adopts the MPI that Boost.MPI's environment holds and never finalizes it; a
// second Runtime can follow on the same MPI.
TEST(BoostMpi, TroupeNeverFinalizesBoostsMpi) {
  mpi::environment env;  // MPI is up already (the harness): Boost adopts it as well
  EXPECT_TRUE(mpi::environment::initialized());
  mpi::communicator world;
  for (int round = 0; round < 2; ++round) {
    {
      troupe::Runtime rt(world, quiet());
      EXPECT_FALSE(rt.owns_mpi());
      troupe::Executor ex(rt, bounded());
      std::vector<int> xs(10);
      std::iota(xs.begin(), xs.end(), 0);
      EXPECT_EQ(ex.map_reduce_all([](int x) { return x; }, std::plus<int>{}, xs, 0), 45 * world.size());
      ex.shutdown();
    }
    int finalized = 1;
    MPI_Finalized(&finalized);
    EXPECT_EQ(finalized, 0) << "round " << round;
    EXPECT_FALSE(mpi::environment::finalized());
    EXPECT_EQ(mpi::all_reduce(world, 1, std::plus<int>()), world.size());  // Boost.MPI still works
  }
}
