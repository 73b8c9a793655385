// shared_value_array: Python's multiprocessing Value and Array, shared by the ranks of a node.
//
// Python equivalent (the multiprocessing documentation's "Sharing state" example):
//
//   from multiprocessing import Process, Value, Array
//   def f(n, a):
//       n.value = 3.1415927
//       for i in range(len(a)):
//           a[i] = -a[i]
//   if __name__ == '__main__':
//       num = Value('d', 0.0)
//       arr = Array('i', range(10))
//       p = Process(target=f, args=(num, arr))
//       p.start(); p.join()
//       print(num.value)   # 3.1415927
//       print(arr[:])      # [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
//
// In troupe the "processes" are the ranks of the node: every rank makes the same Value and
// Array (a collective call), one rank (node rank 1, or 0 when alone) runs f on them in place,
// and after a barrier every rank reads the new contents: the same memory, no copy, no
// message. On several nodes each node has its own num and arr.
//
//   mpirun -n 2 build/examples/example_shared_value_array
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include <troupe/runtime/runtime.hpp>
#include <troupe/window/shared.hpp>

#include "example_check.hpp"

using namespace std::chrono_literals;

namespace {

void f(troupe::SharedValue<double>& n, troupe::SharedArray<int>& a) {
  n.value() = 3.1415927;
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = -a[i];
}

}  // namespace

int main() {
  troupe::Runtime rt;
  using example::check;

  troupe::SharedValue<double> num(0.0);  // num = Value('d', 0.0)
  std::vector<int> range10(10);
  std::iota(range10.begin(), range10.end(), 0);
  troupe::SharedArray<int> arr(range10);  // arr = Array('i', range(10))

  const int worker = rt.node_size() > 1 ? 1 : 0;
  if (rt.node_rank() == worker) f(num, arr);  // p = Process(target=f, args=(num, arr))
  arr.barrier(30s);                           // p.join(): every write is visible after it

  std::string line;
  for (std::size_t i = 0; i < arr.size(); ++i) line += (i ? ", " : "") + std::to_string(arr[i]);
  std::printf("[rank %d, node rank %d of %d] num.value = %.7f  arr[:] = [%s]\n", rt.rank(), rt.node_rank(),
              rt.node_size(), num.value(), line.c_str());
  check(num.value() == 3.1415927, "num.value == 3.1415927 on every rank");
  bool negated = true;
  for (std::size_t i = 0; i < arr.size(); ++i) negated = negated && arr[i] == -static_cast<int>(i);
  check(negated, "arr[:] == [0, -1, ..., -9] on every rank");
  arr.barrier(30s);  // nobody frees while another still reads
  return example::failures == 0 ? 0 : 1;
}
