// Uses the installed (or embedded) troupe: start a Runtime, run a task on a pool, say which
// rank this is and which troupe it linked (the headers' version must be the library's).
#include <troupe/pool/thread_pool.hpp>
#include <troupe/runtime/runtime.hpp>
#include <troupe/version.hpp>

#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (std::strcmp(troupe::version(), TROUPE_VERSION_STRING) != 0) {
    troupe::log(std::string("troupe consumer: headers ") + TROUPE_VERSION_STRING + ", library " + troupe::version());
    return 1;
  }
  troupe::RuntimeOptions options;
  options.quiet = true;
  troupe::Runtime rt(argc, argv, options);
  troupe::ThreadPool pool(2);
  const int answer = pool.submit([](int x) { return x * 6; }, 7).result();
  troupe::log("troupe consumer: rank " + std::to_string(rt.rank()) + " of " + std::to_string(rt.size()) + ", " +
              std::to_string(rt.threads()) + " thread(s), troupe " + troupe::version() + ", answer " +
              std::to_string(answer));
  return answer == 42 ? 0 : 1;
}
