// troupe::lock_all — take several locks in one global order, so that two threads naming
// the same locks in opposite orders cannot deadlock; and troupe::try_lock_all_for, the
// timed version, which holds nothing when it gives up.
//
// Two tellers move money between the same two accounts in opposite directions, 100000
// times each. Locking `from` then `to` by hand would deadlock quickly; lock_all cannot.
#include <troupe/sync/lock_all.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;

struct Account {
  std::mutex mutex;
  long balance = 0;
};

void transfer(Account& from, Account& to, long amount) {
  // The argument order does not matter: locks are taken by increasing address, and the
  // guard unlocks them all at the end of the scope.
  auto guard = troupe::lock_all(from.mutex, to.mutex);
  from.balance -= amount;
  to.balance += amount;
}

int main() {
  Account alice, bob;
  alice.balance = 1000;
  bob.balance = 1000;
  constexpr int kTransfers = 100000;

  std::thread teller1([&] {
    for (int i = 0; i < kTransfers; ++i) transfer(alice, bob, 1);
  });
  std::thread teller2([&] {
    for (int i = 0; i < kTransfers; ++i) transfer(bob, alice, 1);
  });
  teller1.join();
  teller2.join();
  std::printf("after %d transfers each way: alice = %ld, bob = %ld (total %ld)\n", kTransfers, alice.balance,
              bob.balance, alice.balance + bob.balance);

  // The timed form needs timed locks (std::timed_mutex). While another thread holds one of
  // them, try_lock_all_for gives up at the deadline and holds none of them.
  std::timed_mutex a, b;
  std::timed_mutex gate;
  gate.lock();
  std::thread holder([&] {
    std::lock_guard hold(b);
    std::lock_guard wait_for_main(gate);  // keeps b until main unlocks the gate
  });
  // Wait (boundedly) until the holder has b.
  for (int i = 0; i < 5000 && b.try_lock(); ++i) {
    b.unlock();
    std::this_thread::sleep_for(1ms);
  }
  auto blocked = troupe::try_lock_all_for(20ms, a, b);
  std::printf("try_lock_all_for(20ms) while b is held elsewhere: %s\n", blocked ? "acquired" : "timed out");
  const bool a_free = a.try_lock();  // nothing was left locked
  if (a_free) a.unlock();
  gate.unlock();
  holder.join();
  auto free_now = troupe::try_lock_all_for(1s, b, a);
  std::printf("after the holder left: %s\n", free_now ? "acquired both" : "timed out");

  const bool ok = alice.balance == 1000 && bob.balance == 1000 && !blocked && a_free && free_now;
  std::puts(ok ? "ordered_locking: OK" : "ordered_locking: FAILED");
  return ok ? 0 : 1;
}
