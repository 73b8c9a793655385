// Uses the installed troupe: start a Runtime, say which rank this is.
#include <troupe/runtime/runtime.hpp>

#include <string>

int main(int argc, char** argv) {
  troupe::RuntimeOptions options;
  options.quiet = true;
  troupe::Runtime rt(argc, argv, options);
  troupe::log("troupe consumer: rank " + std::to_string(rt.rank()) + " of " + std::to_string(rt.size()) + ", " +
              std::to_string(rt.threads()) + " thread(s)");
  return 0;
}
