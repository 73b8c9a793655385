// Boost.MPI's send/recv of user data against troupe's wire path, ping-pong between ranks 0 and 1
// (other ranks idle), so a Boost.MPI user can choose which path carries a type.
//
// Paths, per round trip (0 -> 1 -> 0) of one value:
//  - raw:    MPI_Send / MPI_Recv of the doubles themselves, the receiver knowing the count
//            (the floor; vectors only);
//  - boost:  boost::mpi::communicator::send / recv of the value (Boost.MPI serializes
//            user types with its packed archive; a std::vector<double> goes as count + array);
//  - troupe: what troupe's messaging does per record: troupe::wire::serialize into bytes,
//            MPI_Send of the bytes, MPI_Mprobe + MPI_Get_count + MPI_Mrecv (the size is not
//            known in advance, as in troupe's engine), troupe::wire::deserialize.
// Values: std::vector<double> of 8, 1 K and 1 M elements; a struct {name, v, id} with v of 8
// and 1 K doubles, once with a Boost.Serialization serialize() (troupe sends it through
// troupe/wire/boost.hpp: a binary_oarchive) and once with troupe's own troupe_fields hook.
//
//   mpirun -n 2 build/bench/troupe_boost_mpi_bench [--reps N]
// Prints RESULT lines (µs per round trip, slowest rank, median of reps) and RATIO lines:
// boost_over_troupe > 1 means Boost.MPI costs more than troupe's path for that value.
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <troupe/wire/boost.hpp>
#include <troupe/wire/serialize.hpp>

#include "bench_util.hpp"

namespace mpi = boost::mpi;

namespace {

constexpr int kTag = 5;

// The struct as a Boost.MPI code has it.
struct RecBoost {
  std::string name;
  std::vector<double> v;
  int id = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned /*version*/) {
    ar& name& v& id;
  }
};

// The same fields with troupe's own hook (troupe's native encoding, no Boost archive).
struct RecNative {
  std::string name;
  std::vector<double> v;
  int id = 0;
  template <class A>
  void troupe_fields(A& a) {
    a(name, v, id);
  }
};

template <class Rec>
Rec make_rec(std::size_t n) {
  Rec r;
  r.name = "particle-block-0042";
  r.v.assign(n, 1.25);
  r.id = 42;
  return r;
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "boost_mpi_bench: wrong value received: %s\n", what);
  MPI_Abort(MPI_COMM_WORLD, 2);
  std::abort();
}

// troupe's path for one value: serialize, send the bytes, probe for the size, receive, decode.
template <class T>
void troupe_send(const T& x, int dest, MPI_Comm comm) {
  const auto bytes = troupe::wire::serialize(x);
  MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, kTag, comm);
}
template <class T>
T troupe_recv(int src, MPI_Comm comm, std::vector<std::byte>& buf) {
  MPI_Message msg;
  MPI_Status st;
  MPI_Mprobe(src, kTag, comm, &msg, &st);  // the size is known only once the message is here
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  buf.resize(static_cast<std::size_t>(n));
  MPI_Mrecv(buf.data(), n, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
  return troupe::wire::deserialize<T>(buf);
}

struct Bench {
  mpi::communicator world;        // Boost.MPI's path runs on MPI_COMM_WORLD
  MPI_Comm comm = MPI_COMM_NULL;  // raw and troupe paths: a duplicate
  int rank = 0;
  int reps = 15;

  Bench() {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    rank = world.rank();
  }
  ~Bench() { MPI_Comm_free(&comm); }

  template <class Body>
  double time(const std::string& name, long n, Body&& body) {
    auto v = bench::slowest_us_per_op(MPI_COMM_WORLD, reps, n, [&](long k) {
      if (rank < 2) body(k);
    });
    return bench::report(MPI_COMM_WORLD, name.c_str(), "us_per_roundtrip", v, n);
  }

  template <class T, class Check>
  double boost_pingpong(const std::string& name, const T& x, long n, Check&& ok) {
    return time(name, n, [&](long k) {
      T y;
      for (long i = 0; i < k; ++i) {
        if (rank == 0) {
          world.send(1, kTag, x);
          world.recv(1, kTag, y);
        } else {
          world.recv(0, kTag, y);
          world.send(0, kTag, y);
        }
      }
      if (!ok(y)) fail(name.c_str());
    });
  }

  template <class T, class Check>
  double troupe_pingpong(const std::string& name, const T& x, long n, Check&& ok) {
    return time(name, n, [&](long k) {
      std::vector<std::byte> buf;
      T y;
      for (long i = 0; i < k; ++i) {
        if (rank == 0) {
          troupe_send(x, 1, comm);
          y = troupe_recv<T>(1, comm, buf);
        } else {
          y = troupe_recv<T>(0, comm, buf);
          troupe_send(y, 0, comm);
        }
      }
      if (!ok(y)) fail(name.c_str());
    });
  }

  double raw_pingpong(const std::string& name, const std::vector<double>& x, long n) {
    return time(name, n, [&](long k) {
      std::vector<double> y(x.size());
      const int count = static_cast<int>(x.size());
      for (long i = 0; i < k; ++i) {
        if (rank == 0) {
          MPI_Send(x.data(), count, MPI_DOUBLE, 1, kTag, comm);
          MPI_Recv(y.data(), count, MPI_DOUBLE, 1, kTag, comm, MPI_STATUS_IGNORE);
        } else {
          MPI_Recv(y.data(), count, MPI_DOUBLE, 0, kTag, comm, MPI_STATUS_IGNORE);
          MPI_Send(y.data(), count, MPI_DOUBLE, 0, kTag, comm);
        }
      }
      if (y != x) fail(name.c_str());
    });
  }
};

long trips_for(std::size_t elems) { return elems >= (1u << 20) ? 10 : elems >= 1024 ? 500 : 2000; }

}  // namespace

int main(int argc, char** argv) {
  mpi::environment env(argc, argv, mpi::threading::multiple);
  Bench b;
  b.reps = bench::reps_arg(argc, argv, 15);
  if (b.world.size() < 2) {
    if (b.rank == 0) std::printf("boost_mpi_bench: needs 2 ranks (mpirun -n 2)\n");
    return 0;
  }
  if (b.rank == 0) {
    std::printf("boost_mpi_bench: ping-pong ranks 0 <-> 1 of %d; Boost.MPI thread level %s\n", b.world.size(),
                env.thread_level() == mpi::threading::multiple ? "multiple" : "below multiple");
  }

  for (std::size_t elems : {std::size_t{8}, std::size_t{1024}, std::size_t{1} << 20}) {
    const std::vector<double> x(elems, 0.5);
    const long n = trips_for(elems);
    const std::string tag = "vec" + std::to_string(elems);
    auto ok = [&](const std::vector<double>& y) { return y == x; };
    const double raw = b.raw_pingpong("boost_mpi." + tag + ".raw", x, n);
    const double bst = b.boost_pingpong("boost_mpi." + tag + ".boost", x, n, ok);
    const double trp = b.troupe_pingpong("boost_mpi." + tag + ".troupe", x, n, ok);
    bench::ratio(MPI_COMM_WORLD, ("boost_mpi." + tag + ".boost_over_troupe").c_str(), bst / trp);
    bench::ratio(MPI_COMM_WORLD, ("boost_mpi." + tag + ".boost_over_raw").c_str(), bst / raw);
    bench::ratio(MPI_COMM_WORLD, ("boost_mpi." + tag + ".troupe_over_raw").c_str(), trp / raw);
  }

  for (std::size_t elems : {std::size_t{8}, std::size_t{1024}}) {
    const long n = trips_for(elems);
    const std::string tag = "struct" + std::to_string(elems);
    const auto xb = make_rec<RecBoost>(elems);
    const auto xn = make_rec<RecNative>(elems);
    auto okb = [&](const RecBoost& y) { return y.name == xb.name && y.v == xb.v && y.id == xb.id; };
    auto okn = [&](const RecNative& y) { return y.name == xn.name && y.v == xn.v && y.id == xn.id; };
    const double bst = b.boost_pingpong("boost_mpi." + tag + ".boost", xb, n, okb);
    const double tb = b.troupe_pingpong("boost_mpi." + tag + ".troupe_boost_archive", xb, n, okb);
    const double tn = b.troupe_pingpong("boost_mpi." + tag + ".troupe_native", xn, n, okn);
    bench::ratio(MPI_COMM_WORLD, ("boost_mpi." + tag + ".boost_over_troupe_boost_archive").c_str(), bst / tb);
    bench::ratio(MPI_COMM_WORLD, ("boost_mpi." + tag + ".boost_over_troupe_native").c_str(), bst / tn);
  }
  return 0;
}
