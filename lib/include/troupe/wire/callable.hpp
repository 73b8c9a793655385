#pragma once
/// @file
/// @brief Remote callable identity: which callables may be sent to another rank, how
/// they are named on the wire, and how a receiving rank calls them.
///
/// Every rank runs the same binary (checked by troupe::Runtime), so a callable is sent
/// as a small integer id plus its state, never as an address. Each (callable type,
/// argument types) pair gets an *invoker*, keyed by a 64-bit FNV-1a hash of the
/// mangled `typeid(...).name()` of the invoker type. That name is the same in every
/// rank of the same binary whatever ASLR/PIE and shared libraries do, and it does not
/// depend on static-initialization order. Invokers register themselves during static
/// initialization (a template static member that callable_id() odr-uses, so every
/// instantiation anywhere in the binary registers itself in every rank); at first use
/// the keys are sorted into a dense id table, identical in every rank without any
/// communication, whose digest the Runtime's same-binary check compares across ranks.
///
/// What may be sent (troupe::wire::SendableCallable):
/// - a function named at compile time: `troupe::remote<&f>` / `TROUPE_REMOTE(f)`;
/// - a function pointer value, if the function is registered (`TROUPE_REGISTER_FUNCTION(f)`
///   at namespace scope, or any `troupe::remote<&f>` sent anywhere in the binary);
/// - a lambda or functor that is empty, or trivially copyable without an address in it (its
///   bytes are copied), or wire-Serializable through a hook (sent through
///   troupe/wire/serialize.hpp).
///
/// @code
/// int square(int x) { return x * x; }
/// troupe::wire::Writer w;
/// troupe::wire::encode_call(w, troupe::remote<&square>, 7);        // [id][args]
/// troupe::wire::encode_call(w, [k = 3](int x) { return k * x; }, 7); // [id][k][args]
/// // on the receiving rank:
/// troupe::wire::Reader in(bytes);
/// troupe::wire::Writer out;
/// troupe::wire::decode_and_invoke(in, out);   // out holds the serialized result
/// @endcode
///
/// A lambda that captures by reference (`[&x]`, `[&]`, `[this]`) or captures a pointer, a
/// view or a function pointer would send an *address*, garbage on another rank: it is
/// rejected at compile time ("this callable holds an address"), found by a constant-evaluated
/// std::bit_cast, which C++ allows only for types without pointer, reference or union
/// members. What C++ cannot see (an address kept as an integer, a pointer in a non-literal
/// functor) is looked for in the bytes at encode time: a word that is an address of this
/// process is a troupe::ValueError naming the callable. docs/remote-callables.md lists the
/// closure shapes measured and what remains possible.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "troupe/core/error.hpp"
#include "troupe/wire/serialize.hpp"

namespace troupe::wire {

/// @brief Dense index of an entry of the callable table; the same in every rank.
using CallableId = std::uint32_t;

/// @brief An id that names no invoker arrived (corrupt message or a different build).
/// The message names the id and the table size. Thrown by invoke(), decode_and_invoke().
class UnknownCallable : public troupe::Error {
 public:
  using Error::Error;
};

/// @brief 64-bit FNV-1a hash of @p bytes. Thread-safe, never throws.
std::uint64_t fnv1a64(std::string_view bytes) noexcept;

/// @brief Input of build_callable_table(): one registered entry.
struct CallableKey {
  std::uint64_t key = 0;                 ///< fnv1a64(name)
  std::string name;                      ///< mangled type name (as typeid(...).name())
  const std::type_info* type = nullptr;  ///< the type itself, if known (tells same-named types apart)
};

/// @brief A built callable table: id `i` is `keys[i]`.
struct CallableTable {
  std::vector<std::uint64_t> keys;  ///< sorted, unique; the index is the CallableId
  std::vector<std::size_t> order;   ///< for each id, the index of its entry in the input
  std::uint64_t digest = 0;         ///< hash of the count and of the sorted keys
  /// @brief The id of @p key, if present (binary search). Never throws.
  std::optional<CallableId> find(std::uint64_t key) const noexcept;
};

/// @brief Builds the dense id table from registered keys: a pure function, so the
/// result depends only on the *set* of keys, not on their order.
///
/// Entries with the same key and the same name are one type registered twice (e.g.
/// from two shared libraries) and are merged, unless both carry a `type` and the types
/// differ: then they are distinct types with internal linkage that share a mangled
/// name (lambdas or classes in anonymous namespaces or static functions of different
/// translation units), and this throws. Entries with the same key and different names
/// are a 64-bit hash collision, and this throws too.
/// @param entries registered entries, in any order.
/// @return the table (keys sorted ascending, digest).
/// @throws troupe::Error naming both (demangled) types for a duplicate key.
/// @note Thread-safe (no shared state).
CallableTable build_callable_table(std::span<const CallableKey> entries);

/// @brief Builds this binary's callable table from the registrations made during
/// static initialization. Called by the executor at start (and implicitly by the first
/// callable_id(), invoke() or callable_table_digest()); idempotent.
/// @throws troupe::Error for a duplicate key (the same error again on every later call).
/// @note Thread-safe; takes a mutex the first time, lock-free afterwards.
/// @warning Do not send callables from static initializers: registrations made after
/// the table is built (e.g. by a shared library loaded with dlopen later) get no id, and
/// callable_id() throws troupe::InvalidStateError for them.
void finalize_callable_table();

/// @brief Digest of this binary's callable table (finalizes it). The executor passes it
/// to the Runtime's same-binary check, so ranks whose tables differ fail at start.
/// @throws as finalize_callable_table(). Thread-safe.
std::uint64_t callable_table_digest();

/// @brief Number of entries of the callable table (finalizes it). Thread-safe.
std::size_t callable_table_size();

/// @brief Demangled name of the type behind @p id (diagnostics).
/// @throws UnknownCallable for an id out of range. Thread-safe.
std::string callable_name(CallableId id);

/// @brief Reads a call of entry @p id from @p in (callable state, then arguments), calls
/// it on this thread and writes its serialized result into @p out (nothing for void).
/// @throws UnknownCallable for an id that names no invoker (message: the id and the table
///         size) — never a jump; troupe::wire::DecodeError for truncated or malformed
///         input; whatever the user's function throws (the executor encodes it with
///         troupe::wire::encode_exception()).
/// @note Thread-safe; blocks only as long as the user's function.
void invoke(CallableId id, Reader& in, Writer& out);

/// @brief Reads the id written by encode_call() and calls invoke().
/// @throws as invoke(); DecodeError if the id itself is truncated.
void decode_and_invoke(Reader& in, Writer& out);

}  // namespace troupe::wire

namespace troupe {

/// @brief The function @p Fn as a stateless, sendable callable type of its own.
///
/// `troupe::remote<&f>` has a distinct type per function, so its invoker key names the
/// function itself: the safe way to send a free function or a static member function.
/// @tparam Fn a pointer to a function (for overloads: `static_cast<int (*)(int)>(&f)`).
template <auto Fn>
struct RemoteFunction {
  static_assert(
      std::is_pointer_v<decltype(Fn)> && std::is_function_v<std::remove_pointer_t<decltype(Fn)>>,
      "troupe::remote<Fn>: Fn must be a pointer to a free or static member function, e.g. troupe::remote<&f>");
  /// @brief Calls @p Fn. Thread-safe as @p Fn is.
  template <class... A>
  requires std::is_invocable_v<decltype(Fn), A...> std::invoke_result_t<decltype(Fn), A...>
  operator()(A&&... args) const { return std::invoke(Fn, std::forward<A>(args)...); }
};

/// @brief `troupe::remote<&f>`: the function `f` as a callable that can be sent to
/// other ranks (see troupe/wire/callable.hpp).
/// @code
/// double area(double r);
/// auto fut = executor.submit(troupe::remote<&area>, 2.0);
/// @endcode
template <auto Fn>
inline constexpr RemoteFunction<Fn> remote{};

}  // namespace troupe

/// @brief `TROUPE_REMOTE(f)` is `troupe::remote<&f>`.
#define TROUPE_REMOTE(f) (::troupe::remote<&f>)

#define TROUPE_WIRE_CAT_(a, b) a##b
#define TROUPE_WIRE_CAT(a, b) TROUPE_WIRE_CAT_(a, b)

/// @brief At namespace scope: lets pointers to function @p f be sent as values
/// (`submit(&f, x)`, or a `int (*)(int)` chosen at run time). Registers at static
/// initialization, identically in every rank.
#define TROUPE_REGISTER_FUNCTION(f)                                                                       \
  [[maybe_unused]] static const std::uint64_t TROUPE_WIRE_CAT(troupe_registered_function_, __COUNTER__) = \
      ::troupe::wire::detail::FunctionEntry<&f>::key

namespace troupe::wire::detail {

/// Erased invoker: reads state and arguments, calls, writes the result.
using InvokeFn = void (*)(Reader&, Writer&);
/// Any function pointer, converted for storage (converted back to its exact type only).
using ErasedFn = void (*)();

/// Records an invoker (at static initialization); returns its key.
std::uint64_t register_invoker(const std::type_info& invoker_type, InvokeFn fn) noexcept;
/// Records a sendable function (at static initialization); returns its key.
std::uint64_t register_function(const std::type_info& entry_type, const std::type_info& fn_type, ErasedFn fn) noexcept;
/// The id of a registered key (finalizes the table); InvalidStateError if it came too late.
CallableId id_for_key(std::uint64_t key, const std::type_info& type);
/// The id of a registered function; troupe::ValueError naming the API if not registered.
CallableId function_id(ErasedFn fn, const std::type_info& fn_type);
/// The function of a function id, checked against the expected pointer type; UnknownCallable
/// if @p id is out of range, not a function, or of another type.
ErasedFn function_for_id(CallableId id, const std::type_info& fn_type);

/// Types whose mangled names key the table entries (complete, empty, never instantiated
/// as objects).
template <class F, class... Args>
struct InvokerTag {};
template <auto Fn>
struct FunctionTag {};

template <class F>
inline constexpr bool is_function_pointer_v = std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;

/// How the state of callable type F travels. HoldsAddress: trivially copyable, but it holds
/// an address (a pointer, a reference: a lambda's capture by reference), so it is rejected.
enum class StateKind { None, FunctionId, Bytes, Serialized, HoldsAddress, Unsendable };

/// A bit_cast to F in a constant expression: ill-formed exactly when F has a pointer,
/// reference, member pointer, union or volatile subobject (C++20 [bit.cast]/3). This is the
/// one thing the type system tells about a closure's captures: `[&x]`, `[p = &x]`, `[this]`
/// fail it; `[x]`, `[*this]` pass.
template <class F>
consteval bool bit_cast_probe() {
  std::array<unsigned char, sizeof(F)> raw{};
  static_cast<void>(std::bit_cast<F>(raw));
  return true;
}
template <class F, class = void>
struct provably_address_free : std::false_type {};
template <class F>
struct provably_address_free<F, std::void_t<std::integral_constant<bool, bit_cast_probe<F>()>>> : std::true_type {};

/// True for a trivially copyable F that C++ proves to hold an address (or a union). Only
/// literal types can be probed (every closure whose captures are literal is one); a
/// non-literal functor is left to the run-time scan of check_state_bytes().
template <class F>
inline constexpr bool holds_address_v = __is_literal_type(F) && !provably_address_free<F>::value;

template <class F>
consteval StateKind state_kind() {
  if constexpr (is_function_pointer_v<F>) {
    return StateKind::FunctionId;
  } else if constexpr (!std::is_class_v<F>) {
    return StateKind::Unsendable;  // member pointers, objects pointers, arithmetic, ...
  } else if constexpr (std::is_empty_v<F> && std::is_default_constructible_v<F> && std::is_copy_constructible_v<F>) {
    return StateKind::None;
  } else if constexpr (Serializable<F> && std::is_default_constructible_v<F> && !Codec<F>::bitwise) {
    // (A type the serializer would copy bitwise takes the branch below: the same bytes on the
    // wire, but checked for addresses. A default-constructible aggregate holding a function
    // pointer, like the executor's map chunk runner over `&f`, used to pass here unchecked.)
    return StateKind::Serialized;
  } else if constexpr (std::is_trivially_copyable_v<F> && std::is_copy_constructible_v<F>) {
    // (GCC calls some non-copyable types trivially copyable, e.g. a closure holding a std::mutex.)
    if constexpr (holds_address_v<F>) {
      return StateKind::HoldsAddress;
    } else {
      return StateKind::Bytes;
    }
  } else {
    return StateKind::Unsendable;
  }
}

/// Whether a callable of type F can travel (SendableCallable).
template <class F>
inline constexpr bool sendable_state_v =
    state_kind<F>() != StateKind::Unsendable&& state_kind<F>() != StateKind::HoldsAddress;

/// A function registered for sending as a value.
template <auto Fn>
struct FunctionEntry {
  static_assert(is_function_pointer_v<decltype(Fn)>,
                "TROUPE_REGISTER_FUNCTION(f): f must name a free or static member function");
  inline static const std::uint64_t key =
      register_function(typeid(FunctionTag<Fn>), typeid(decltype(Fn)), reinterpret_cast<ErasedFn>(Fn));
};

template <class T>
T read_value(Reader& in) {
  if constexpr (std::is_default_constructible_v<T>) {
    T value{};
    load(in, value);
    return value;
  } else {
    static_assert(std::is_trivially_copyable_v<T>,
                  "troupe::wire: a type read from the wire must be default-constructible or trivially copyable");
    std::array<std::byte, sizeof(T)> raw;
    in.read_bytes(raw.data(), raw.size());
    return std::bit_cast<T>(raw);
  }
}

/// Throws troupe::ValueError naming @p type when an aligned pointer-sized word of the raw
/// state @p bytes is an address of this process: in the calling thread's stack, or in any
/// mapped memory (heap, static data, code, other threads' stacks). What the compile-time
/// check cannot see: an address kept as an integer, or in a non-literal functor.
void check_state_bytes(const void* bytes, std::size_t size, const std::type_info& type);

template <class F>
void write_state(Writer& out, const F& fn) {
  constexpr StateKind kind = state_kind<F>();
  static_assert(kind != StateKind::FunctionId, "function ids are written by encode_call");
  if constexpr (kind == StateKind::Bytes) {
    // A padded closure (an int captured next to a double) carries whatever its padding bytes
    // held, often half of an old stack address: the scan would take the word for an address,
    // and the receiver never reads it. Scanned and sent is a copy whose padding is zero, where
    // the compiler can clear it (GCC >= 11; clang 14 cannot: docs/remote-callables.md).
    alignas(F) std::array<unsigned char, sizeof(F)> raw;
    std::memcpy(raw.data(), &fn, sizeof(F));
#if defined(__has_builtin)
#if __has_builtin(__builtin_clear_padding)
    __builtin_clear_padding(std::launder(reinterpret_cast<F*>(raw.data())));
#endif
#endif
    if constexpr (sizeof(F) >= sizeof(void*)) {
      check_state_bytes(raw.data(), sizeof(F), typeid(F));
    }
    out.write_bytes(raw.data(), sizeof(F));
  } else if constexpr (kind == StateKind::Serialized) {
    save(out, fn);
  }
}

template <class F>
F read_state(Reader& in) {
  constexpr StateKind kind = state_kind<F>();
  if constexpr (kind == StateKind::FunctionId) {
    const auto id = in.template read<CallableId>();
    return reinterpret_cast<F>(function_for_id(id, typeid(F)));
  } else if constexpr (kind == StateKind::None) {
    return F{};
  } else if constexpr (kind == StateKind::Bytes) {
    std::array<std::byte, sizeof(F)> raw;
    in.read_bytes(raw.data(), raw.size());
    return std::bit_cast<F>(raw);
  } else {
    F fn{};
    load(in, fn);
    return fn;
  }
}

/// Calls fn with the arguments as rvalues when it accepts them (move-only arguments),
/// else as lvalues (parameters taken by non-const reference).
template <class F, class Tuple>
decltype(auto) apply_args(F& fn, Tuple& args) {
  return std::apply(
      [&fn](auto&... a) -> decltype(auto) {
        if constexpr (std::is_invocable_v<F&, decltype(std::move(a))...>) {
          return std::invoke(fn, std::move(a)...);
        } else {
          return std::invoke(fn, a...);
        }
      },
      args);
}

template <class F, class... Args>
inline constexpr bool invocable_from_wire_v = std::is_invocable_v<F&, Args&&...> || std::is_invocable_v<F&, Args&...>;

/// The result of calling F as invoke() does (rvalue arguments when it accepts them, else
/// lvalues); void when it cannot be called at all, so that naming the result of a wrong
/// call (Executor::submit's return type) reports the static_assert below, not a missing
/// `type` deep in std::invoke_result.
template <class F, class... Args>
using wire_result_t =
    typename std::conditional_t<std::is_invocable_v<F&, Args&&...>, std::invoke_result<F&, Args&&...>,
                                std::conditional_t<std::is_invocable_v<F&, Args&...>, std::invoke_result<F&, Args&...>,
                                                   std::type_identity<void>>>::type;

/// The invoker of callable type F with (decayed) argument types Args.
template <class F, class... Args>
struct Invoker {
  // First, before anything uses the result type: the error that call_result_t (and so
  // Executor::submit, submit_to, apply) reports for arguments the callable does not take.
  static_assert(invocable_from_wire_v<F, Args...>,
                "troupe::wire::encode_call: the callable cannot be called with these argument types");
  using result_type = std::remove_cvref_t<wire_result_t<F, Args...>>;
  static_assert(std::is_void_v<result_type> || Serializable<result_type>,
                "troupe::wire::encode_call: the callable's result type must be wire-Serializable "
                "(see troupe/wire/serialize.hpp)");

  static void invoke(Reader& in, Writer& out) {
    F fn = read_state<F>(in);
    // Braced initialization reads the arguments left to right.
    std::tuple<Args...> args{read_value<Args>(in)...};
    if constexpr (std::is_void_v<result_type>) {
      apply_args(fn, args);
    } else {
      decltype(auto) result = apply_args(fn, args);
      if (out.blocks_enabled()) {
        // Its large parts are sent from where they are: the value lives on with the writer.
        save_kept(out, std::forward<decltype(result)>(result));
      } else {
        save(out, static_cast<const result_type&>(result));
      }
    }
  }

  inline static const std::uint64_t key = register_invoker(typeid(InvokerTag<F, Args...>), &Invoker::invoke);
};

template <class F>
struct TouchFunctionEntry {
  static void touch() noexcept {}
};
template <auto Fn>
struct TouchFunctionEntry<RemoteFunction<Fn>> {
  // Sending remote<&f> also registers &f, so its pointer can be sent as a value.
  static void touch() noexcept { static_cast<void>(FunctionEntry<Fn>::key); }
};

}  // namespace troupe::wire::detail

namespace troupe::wire {

/// @brief True for callable types whose state can travel to another rank: function
/// pointers, `troupe::remote<&f>`, and class types that are empty, wire-Serializable
/// and default-constructible, or trivially copyable without a pointer or reference member
/// (so not a lambda that captures by reference, `[this]` or a pointer).
template <class F>
concept SendableCallable = detail::sendable_state_v<std::remove_cvref_t<std::decay_t<F>>>;

/// @brief The decayed result type of calling @p F with arguments of types @p Args on the
/// receiving rank (void for none). What the executor deserializes from the result bytes.
/// Arguments that @p F does not accept fail to compile with the static_assert
/// "troupe::wire::encode_call: the callable cannot be called with these argument types" as
/// the first error (Executor::submit names its result with this).
template <class F, class... Args>
using call_result_t = typename detail::Invoker<std::decay_t<F>, std::decay_t<Args>...>::result_type;

/// @brief The id of the invoker of callable type @p F with argument types @p Args; the
/// same in every rank. Odr-uses the invoker's registration, so merely naming this
/// instantiation registers it in every rank at static initialization.
/// @throws troupe::Error if the table has a duplicate key; troupe::InvalidStateError if
/// this invoker was registered after the table was built (dlopen after start).
/// @note Thread-safe; after the first call per instantiation, a load of a local static.
template <class F, class... Args>
CallableId callable_id() {
  using Inv = detail::Invoker<std::decay_t<F>, std::decay_t<Args>...>;
  static const CallableId id =
      detail::id_for_key(Inv::key, typeid(detail::InvokerTag<std::decay_t<F>, std::decay_t<Args>...>));
  return id;
}

/// @brief Writes a call of @p fn with @p args: `[id][callable state][args...]`.
///
/// The callable's state is nothing (empty types, `troupe::remote<&f>`), the id of a
/// registered function (function pointers), its bytes (trivially copyable lambdas and
/// functors) or its serialization (Serializable functors). Arguments are serialized in
/// order; the receiving rank passes them as rvalues when the callable accepts that.
/// @tparam F a SendableCallable; anything else fails to compile with a message that says why.
/// @param out where the call is appended.
/// @param fn the callable (a function name decays to a pointer, which must be registered).
/// @param args the arguments; each must be wire-Serializable.
/// @throws troupe::ValueError for a function pointer that is null or not registered, or for
///         callable bytes that hold an address of this process (the message names the
///         callable, the offset and the value); nothing is written then. What the
///         serializer throws.
/// @note Thread-safe for distinct writers; does not block.
template <class F, class... Args>
void encode_call(Writer& out, const F& fn, const Args&... args) {
  using C = std::decay_t<F>;
  static_assert(!std::is_member_pointer_v<C>,
                "troupe::wire::encode_call: a pointer to member cannot be sent; wrap the call in a "
                "lambda or functor that takes the object as an argument");
  static_assert(detail::state_kind<C>() != detail::StateKind::HoldsAddress,
                "troupe::wire::encode_call: this callable holds an address, which points at garbage on "
                "another rank: a lambda that captures by reference ([&x], [&], [this]) or captures a "
                "pointer, a std::string_view, a std::span or a function pointer (or a union, "
                "std::optional or std::variant, which C++ cannot tell apart from these); capture by "
                "value ([x], [*this]), pass the data as arguments, or send a wire-Serializable functor "
                "(see docs/remote-callables.md)");
  static_assert(
      std::is_member_pointer_v<C> || detail::state_kind<C>() == detail::StateKind::HoldsAddress || SendableCallable<C>,
      "troupe::wire::encode_call: this callable cannot be sent to another rank: a lambda's "
      "captures (or a functor's members) must be trivially copyable values, or the functor "
      "must be wire-Serializable and default-constructible; capture by value or pass the "
      "data as arguments (see docs/remote-callables.md)");
  static_assert((Serializable<std::decay_t<Args>> && ...),
                "troupe::wire::encode_call: every argument type must be wire-Serializable "
                "(see troupe/wire/serialize.hpp)");
  static_assert(!SendableCallable<C> || detail::invocable_from_wire_v<C, std::decay_t<Args>...>,
                "troupe::wire::encode_call: the callable cannot be called with these argument types");
  // Only a call that passed every check is instantiated further, so a rejected one reports
  // the static_assert above and nothing else.
  if constexpr (SendableCallable<C> && (Serializable<std::decay_t<Args>> && ...) &&
                detail::invocable_from_wire_v<C, std::decay_t<Args>...>) {
    // A function reference decays to a pointer here; any other callable is not copied.
    std::conditional_t<std::is_function_v<F>, const C, const C&> callable = fn;
    CallableId function = 0;
    if constexpr (detail::is_function_pointer_v<C>) {
      // Validated before anything is written: an unregistered pointer writes nothing.
      if (callable == nullptr) {
        throw troupe::ValueError("troupe::wire::encode_call: the function pointer is null");
      }
      function = detail::function_id(reinterpret_cast<detail::ErasedFn>(callable), typeid(C));
    }
    detail::TouchFunctionEntry<C>::touch();
    const CallableId id = callable_id<C, Args...>();
    const std::size_t start = out.size();
    try {
      out.write(id);
      if constexpr (detail::is_function_pointer_v<C>) {
        out.write(function);
      } else {
        detail::write_state(out, callable);
      }
      (save(out, static_cast<const std::decay_t<Args>&>(args)), ...);
    } catch (...) {
      out.buffer().resize(start);  // all or nothing
      throw;
    }
  }
}

}  // namespace troupe::wire
