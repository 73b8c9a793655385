// boost_mpi_mix: a Boost.MPI program that hands one phase of its work to troupe.
//
// The shape of a real host code: Boost.MPI owns MPI (boost::mpi::environment), the program
// keeps its own communicators and collectives, and troupe works on the same ranks for one
// phase, on a Runtime made from the program's boost::mpi::communicator. The user types are
// made serializable once, with Boost.Serialization; both Boost.MPI and troupe's wire
// (troupe/wire/boost.hpp) send them.
//
// Python equivalent (mpi4py for the host's collectives, mpi4py.futures for the phase):
//
//   comm = MPI.COMM_WORLD
//   params = comm.bcast(params, root=0)
//   with MPICommExecutor(comm, root=0) as ex:
//       if ex is not None: stats = reduce(merge, ex.map(measure, particles))
//   total = comm.allreduce(local, op=MPI.SUM); names = comm.gather(name, root=0)
//
// 1. rank 0 broadcasts the run's parameters (a Boost-serializable struct) with Boost.MPI;
// 2. troupe: Executor::map_reduce over the particles, root-driven, on a Runtime made from
//    the boost::mpi::communicator; the particles and the per-chunk statistics travel on
//    troupe's wire through their Boost.Serialization functions;
// 3. Boost.MPI all_reduce and gather on the same ranks, right after troupe's phase;
// 4. the ranks split in two halves (world.split): each half runs its own troupe executor
//    (SPMD map_reduce_all) and checks it against a Boost.MPI all_reduce on that half.
// Every answer is checked against a serial computation; the exit code says if one was wrong.
//
//   mpirun -n 4 build/examples/example_boost_mpi_mix
#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <troupe/executor/executor.hpp>
#include <troupe/runtime/runtime.hpp>
#include <troupe/wire/boost.hpp>  // troupe's wire sends types with a Boost.Serialization serialize()

#include "example_check.hpp"

namespace mpi = boost::mpi;
using example::check;
using example::failures;

namespace {

// The run's parameters: rank 0 reads them (here: sets them) and broadcasts them.
struct Params {
  int particles = 0;
  double dt = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar, const unsigned /*version*/) {
    ar& particles& dt& label;
  }
};

// A user type the host code already made serializable for Boost.MPI.
struct Particle {
  int id = 0;
  std::string species;
  std::vector<double> v;  // velocity
  double mass = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned /*version*/) {
    ar& id& species& v& mass;
  }
};

// What the phase computes: count, kinetic energy, and the heaviest particle seen.
struct Stats {
  long count = 0;
  double energy = 0;
  int heaviest = -1;
  double heaviest_mass = -1;
  template <class Archive>
  void serialize(Archive& ar, const unsigned /*version*/) {
    ar& count& energy& heaviest& heaviest_mass;
  }
};

Particle make_particle(int id) {
  Particle p;
  p.id = id;
  p.species = (id % 3 == 0) ? "ion" : "electron";
  p.v = {0.5 * (id % 7), 0.25 * (id % 5), -0.125 * (id % 11)};
  p.mass = 1.0 + (id * 37 % 101) / 8.0;  // multiples of 1/8: every sum below is exact
  return p;
}

// Captureless lambdas: troupe can send them to any rank.
const auto measure = [](const Particle& p) {
  double v2 = 0;
  for (double x : p.v) v2 += x * x;
  return Stats{1, 0.5 * p.mass * v2, p.id, p.mass};
};
const auto merge = [](Stats a, const Stats& b) {
  Stats s{a.count + b.count, a.energy + b.energy, a.heaviest, a.heaviest_mass};
  // Ties go to the smaller id, so the answer does not depend on how the input was cut.
  if (b.heaviest_mass > a.heaviest_mass || (b.heaviest_mass == a.heaviest_mass && b.heaviest < a.heaviest)) {
    s.heaviest = b.heaviest;
    s.heaviest_mass = b.heaviest_mass;
  }
  return s;
};

Stats serial_stats(int first, int n, int stride) {
  Stats s;
  for (int i = first; i < n; i += stride) s = merge(s, measure(make_particle(i)));
  return s;
}

bool same(const Stats& a, const Stats& b) {
  return a.count == b.count && a.energy == b.energy && a.heaviest == b.heaviest && a.heaviest_mass == b.heaviest_mass;
}

}  // namespace

const char* level_name(mpi::threading::level l) {
  switch (l) {
    case mpi::threading::single:
      return "single";
    case mpi::threading::funneled:
      return "funneled";
    case mpi::threading::serialized:
      return "serialized";
    default:
      return "multiple";
  }
}

mpi::threading::level requested_level(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--level") != 0) continue;
    const std::string l = argv[i + 1];
    if (l == "single") return mpi::threading::single;
    if (l == "funneled") return mpi::threading::funneled;
    if (l == "serialized") return mpi::threading::serialized;
  }
  return mpi::threading::multiple;
}

int main(int argc, char** argv) {
  // Boost.MPI owns MPI: it initializes it here and finalizes it at the end of main, after
  // every troupe object below is gone. MULTIPLE lets troupe drive MPI from a progress thread;
  // at a lower level troupe still works (FUNNELED mode: only this thread calls MPI).
  // `--level single|funneled|serialized` asks for less, to try FUNNELED mode.
  const mpi::threading::level asked = requested_level(argc, argv);
  mpi::environment env(argc, argv, asked);
  mpi::communicator world;
  const int rank = world.rank();
  const int size = world.size();

  // 1. Boost.MPI: parameters from rank 0. --------------------------------------------------
  Params params;
  if (rank == 0) params = Params{240, 0.01, "run-A"};
  mpi::broadcast(world, params, 0);
  check(params.particles == 240 && params.label == "run-A", "broadcast parameters arrive on every rank");

  {
    // 2. troupe on the same ranks: a Runtime made from the boost::mpi::communicator (it
    // converts to MPI_Comm; troupe works on a duplicate, so its messages never meet the
    // host's). The Runtime adopts Boost's MPI and never finalizes it.
    troupe::RuntimeOptions ro;
    ro.quiet = true;
    troupe::Runtime rt(world, ro);
    if (rank == 0) {
      std::printf("boost_mpi_mix on %d rank(s); MPI thread level %s (asked Boost for %s); troupe owns MPI: %s\n", size,
                  std::string(troupe::to_string(rt.thread_level())).c_str(), level_name(asked),
                  rt.owns_mpi() ? "yes" : "no");
    }
    check(!rt.owns_mpi(), "troupe adopts the MPI that Boost.MPI initialized");
    check(rt.size() == size && rt.rank() == rank, "the Runtime has the boost communicator's ranks");

    Stats phase;
    {
      troupe::Executor ex(rt);  // collective over the boost communicator's ranks
      if (ex.is_root()) {
        std::vector<Particle> particles;
        for (int i = 0; i < params.particles; ++i) particles.push_back(make_particle(i));
        // The particles go to the ranks in chunks of 16 and the Stats come back, all through
        // troupe's wire calling their Boost.Serialization functions.
        phase = ex.map_reduce(measure, merge, particles, {.chunksize = 16});
        const Stats serial = serial_stats(0, params.particles, 1);
        std::printf("2. troupe map_reduce over %d particles: count %ld, energy %.4f, heaviest #%d (mass %.3f)\n",
                    params.particles, phase.count, phase.energy, phase.heaviest, phase.heaviest_mass);
        check(same(phase, serial), "troupe's map_reduce equals the serial loop");
      }
      ex.shutdown();  // collective: the serving ranks leave the phase here
    }

    // 3. Boost.MPI again, right after the phase, on the same ranks: the root shares the
    // phase's result; every rank then adds its share of a second pass (particle i on rank
    // i % size) with all_reduce, and rank 0 gathers each rank's count.
    mpi::broadcast(world, phase, 0);
    const Stats mine = serial_stats(rank, params.particles, size);
    const double energy = mpi::all_reduce(world, mine.energy, std::plus<double>());
    std::vector<long> counts;
    mpi::gather(world, mine.count, counts, 0);
    check(energy == phase.energy, "Boost.MPI all_reduce of the per-rank energies equals troupe's total");
    if (rank == 0) {
      long total = 0;
      for (long c : counts) total += c;
      std::printf("3. Boost.MPI all_reduce energy %.4f, gather of counts: %zu ranks, %ld particles\n", energy,
                  counts.size(), total);
      check(counts.size() == static_cast<std::size_t>(size) && total == params.particles,
            "Boost.MPI gather collects every rank's count");
    }

    // 4. Two halves, each with its own troupe executor on the split communicator. ----------
    const int color = rank % 2;
    mpi::communicator half = world.split(color);
    {
      troupe::ExecutorOptions eo;
      eo.comm = static_cast<MPI_Comm>(half);  // a duplicate of it: troupe never frees the host's
      troupe::Executor ex(rt, eo);
      // SPMD: each rank of the half maps its own particles: those with i % size == rank.
      std::vector<Particle> local;
      for (int i = rank; i < params.particles; i += size) local.push_back(make_particle(i));
      const Stats got = ex.map_reduce_all(measure, merge, local, Stats{});
      ex.shutdown();
      // The same sum by Boost.MPI on the half, and serially.
      const long count = mpi::all_reduce(half, mine.count, std::plus<long>());
      Stats serial;
      for (int r = color; r < size; r += 2) serial = merge(serial, serial_stats(r, params.particles, size));
      if (half.rank() == 0) {
        std::printf(
            "4. half %d (%d rank(s)): troupe map_reduce_all count %ld energy %.4f; Boost all_reduce count %ld\n", color,
            half.size(), got.count, got.energy, count);
      }
      check(same(got, serial), "each half's troupe executor equals the serial loop over that half");
      check(got.count == count, "Boost.MPI's all_reduce on the half agrees with troupe's");
    }
  }  // the Runtime is gone here; MPI is still up: Boost.MPI finalizes it

  int finalized = 1;
  MPI_Finalized(&finalized);
  check(finalized == 0, "troupe left MPI initialized for Boost.MPI to finalize");
  const int bad = mpi::all_reduce(world, failures, std::plus<int>());
  if (rank == 0) std::printf(bad == 0 ? "OK\n" : "FAILED\n");
  return bad == 0 ? 0 : 1;
}
