// Remote exceptions: encode (type name, what(), rank, size, host) and rebuild. See
// troupe/wire/exception.hpp.
#include "troupe/wire/exception.hpp"

#include <cxxabi.h>

#include <any>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <typeinfo>
#include <variant>

#include "troupe/core/detail/text.hpp"

namespace troupe::wire {

std::string demangle(const char* mangled) { return troupe::detail::demangle(mangled); }

namespace {

constexpr std::uint8_t kMagic = 0xE7;  // 'E'xception record
constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kHasMpiCodes = 1;

/// Implemented by the stand-ins for standard exceptions that have no message constructor,
/// so that passing one on to a third rank keeps the original type name.
class RemoteOrigin {
 public:
  virtual ~RemoteOrigin() = default;
  virtual const char* original_type() const noexcept = 0;
};

/// `Base` itself for `catch`, with the remote text as what(). Copies share the text, so
/// copying never throws (exception objects are copied by std::make_exception_ptr).
template <class Base>
class RemoteStd final : public Base, public RemoteOrigin {
 public:
  RemoteStd(std::string text, const char* type)
      : text_(std::make_shared<const std::string>(std::move(text))), type_(type) {}
  const char* what() const noexcept override { return text_->c_str(); }
  const char* original_type() const noexcept override { return type_; }

 private:
  std::shared_ptr<const std::string> text_;
  const char* type_;
};

struct Record {
  std::string type;
  std::string message;
  std::int32_t rank = 0;
  std::int32_t size = 0;
  std::string host;
  std::uint8_t flags = 0;
  std::int32_t code = 0;
  std::int32_t error_class = 0;
};

using Builder = std::exception_ptr (*)(const std::string& text, const Record& r);

template <class E>
std::exception_ptr with_text(const std::string& text, const Record&) {
  return std::make_exception_ptr(E(text));
}

template <class Base>
std::exception_ptr stand_in(const std::string& text, const Record&);

struct Builtin {
  std::string_view type;
  Builder build;
};

std::exception_ptr mpi_error(const std::string& text, const Record& r) {
  return std::make_exception_ptr(troupe::MpiError(text, r.code, r.error_class));
}

// The demangled names GCC and Clang give these types (libstdc++ and libc++ agree).
constexpr Builtin kBuiltins[] = {
    {"std::logic_error", &with_text<std::logic_error>},
    {"std::invalid_argument", &with_text<std::invalid_argument>},
    {"std::domain_error", &with_text<std::domain_error>},
    {"std::length_error", &with_text<std::length_error>},
    {"std::out_of_range", &with_text<std::out_of_range>},
    {"std::runtime_error", &with_text<std::runtime_error>},
    {"std::range_error", &with_text<std::range_error>},
    {"std::overflow_error", &with_text<std::overflow_error>},
    {"std::underflow_error", &with_text<std::underflow_error>},
    {"std::exception", &stand_in<std::exception>},
    {"std::bad_alloc", &stand_in<std::bad_alloc>},
    {"std::bad_array_new_length", &stand_in<std::bad_array_new_length>},
    {"std::bad_cast", &stand_in<std::bad_cast>},
    {"std::bad_typeid", &stand_in<std::bad_typeid>},
    {"std::bad_exception", &stand_in<std::bad_exception>},
    {"std::bad_function_call", &stand_in<std::bad_function_call>},
    {"std::bad_optional_access", &stand_in<std::bad_optional_access>},
    {"std::bad_variant_access", &stand_in<std::bad_variant_access>},
    {"std::bad_any_cast", &stand_in<std::bad_any_cast>},
    {"std::bad_weak_ptr", &stand_in<std::bad_weak_ptr>},
    {"troupe::Error", &with_text<troupe::Error>},
    {"troupe::ValueError", &with_text<troupe::ValueError>},
    {"troupe::TimeoutError", &with_text<troupe::TimeoutError>},
    {"troupe::CancelledError", &with_text<troupe::CancelledError>},
    {"troupe::InvalidStateError", &with_text<troupe::InvalidStateError>},
    {"troupe::BrokenExecutor", &with_text<troupe::BrokenExecutor>},
    {"troupe::BrokenBarrierError", &with_text<troupe::BrokenBarrierError>},
    {"troupe::IndexError", &with_text<troupe::IndexError>},
    {"troupe::KeyError", &with_text<troupe::KeyError>},
    {"troupe::MpiError", &mpi_error},
};

template <class Base>
std::exception_ptr stand_in(const std::string& text, const Record& r) {
  // The name must outlive the exception: point into the static table, not into r.
  for (const Builtin& b : kBuiltins) {
    if (b.type == r.type) {
      return std::make_exception_ptr(RemoteStd<Base>(text, b.type.data()));
    }
  }
  return std::make_exception_ptr(RemoteStd<Base>(text, "std::exception"));
}

class UserTypes {
 public:
  void add(std::string name, detail::ExceptionFactory f) {
    std::lock_guard lock(mutex_);
    map_.insert_or_assign(std::move(name), f);
  }
  detail::ExceptionFactory find(const std::string& name) {
    std::lock_guard lock(mutex_);
    const auto it = map_.find(name);
    return it == map_.end() ? nullptr : it->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, detail::ExceptionFactory, std::less<>> map_;
};

UserTypes& user_types() {
  static UserTypes* types = new UserTypes;  // never destroyed: usable during static destruction
  return *types;
}

std::string origin(const Record& r) {
  // append(), not "literal" + string: GCC 12 warns falsely (-Wrestrict) about the latter.
  std::string s = std::string("[rank ").append(std::to_string(r.rank));
  if (r.size > 0) {
    s.append("/").append(std::to_string(r.size));
  }
  if (!r.host.empty()) {
    s.append(" on ").append(r.host);
  }
  s.append("] ").append(r.type);
  if (!r.message.empty()) {
    s += ": " + r.message;
  }
  return s;
}

[[noreturn]] void malformed(const std::string& what) {
  throw DecodeError("troupe::wire::decode_exception: malformed exception record: " + what);
}

}  // namespace

void encode_exception(Writer& out, std::exception_ptr error, int rank, const std::string& host, int size) {
  if (!error) {
    throw troupe::ValueError("troupe::wire::encode_exception: the exception_ptr is null");
  }
  if (rank < 0 || size < 0 || (size > 0 && rank >= size)) {
    throw troupe::ValueError("troupe::wire::encode_exception: rank must be in [0, size), got rank " +
                             std::to_string(rank) + " of " + std::to_string(size));
  }
  Record r;
  r.rank = rank;
  r.size = size;
  r.host = host;
  try {
    std::rethrow_exception(error);
  } catch (const troupe::RemoteError& e) {
    r.type = e.type_name();  // passed on from a nested remote task: keep the original type
    r.message = e.what();
  } catch (const troupe::MpiError& e) {
    r.type = demangle(typeid(e).name());
    r.message = e.what();
    r.flags = kHasMpiCodes;
    r.code = e.code();
    r.error_class = e.error_class();
  } catch (const std::exception& e) {
    const auto* stand = dynamic_cast<const RemoteOrigin*>(&e);
    r.type = stand != nullptr ? std::string(stand->original_type()) : demangle(typeid(e).name());
    r.message = e.what();
  } catch (const char* s) {
    r.type = "const char*";
    r.message = s != nullptr ? s : "";
  } catch (const std::string& s) {
    r.type = "std::string";
    r.message = s;
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    r.type = t != nullptr ? demangle(t->name()) : std::string("(unknown type)");
  }

  const std::size_t start = out.size();
  try {
    out.write(kMagic);
    out.write(kVersion);
    save(out, r.type);
    save(out, r.message);
    out.write(r.rank);
    out.write(r.size);
    save(out, r.host);
    out.write(r.flags);
    if ((r.flags & kHasMpiCodes) != 0) {
      out.write(r.code);
      out.write(r.error_class);
    }
  } catch (...) {
    out.buffer().resize(start);  // all or nothing
    throw;
  }
}

std::exception_ptr decode_exception(Reader& in) {
  const auto magic = in.read<std::uint8_t>();
  if (magic != kMagic) {
    malformed("bad magic byte " + std::to_string(magic));
  }
  const auto version = in.read<std::uint8_t>();
  if (version != kVersion) {
    malformed("unsupported version " + std::to_string(version) + " (this build reads " + std::to_string(kVersion) +
              ")");
  }
  Record r;
  load(in, r.type);
  load(in, r.message);
  r.rank = in.read<std::int32_t>();
  r.size = in.read<std::int32_t>();
  load(in, r.host);
  r.flags = in.read<std::uint8_t>();
  if (r.type.empty()) {
    malformed("empty type name");
  }
  if (r.rank < 0 || r.size < 0 || (r.size > 0 && r.rank >= r.size)) {
    malformed("rank " + std::to_string(r.rank) + " of " + std::to_string(r.size));
  }
  if ((r.flags & ~kHasMpiCodes) != 0) {
    malformed("unknown flags " + std::to_string(r.flags));
  }
  if ((r.flags & kHasMpiCodes) != 0) {
    r.code = in.read<std::int32_t>();
    r.error_class = in.read<std::int32_t>();
  }

  const std::string text = origin(r);
  for (const Builtin& b : kBuiltins) {
    if (b.type == r.type) {
      return b.build(text, r);
    }
  }
  if (const detail::ExceptionFactory f = user_types().find(r.type)) {
    try {
      return f(text);
    } catch (...) {
      return std::current_exception();  // the user's constructor threw: deliver that instead
    }
  }
  return std::make_exception_ptr(troupe::RemoteError(r.type, r.message, r.rank, text));
}

namespace detail {

bool register_exception_factory(const char* mangled_name, ExceptionFactory factory) {
  user_types().add(demangle(mangled_name), factory);
  return true;
}

}  // namespace detail
}  // namespace troupe::wire
