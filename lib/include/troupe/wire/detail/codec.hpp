#pragma once
/// @file
/// @brief Internal: one Codec<T> per supported type family. troupe/wire/serialize.hpp includes
/// it after Writer, Reader and the declarations it needs (and it includes serialize.hpp, so it
/// also compiles on its own).
///
/// Each Codec<T> has
///  - `supported`: T can be sent (element types checked recursively);
///  - `bitwise`:   T's object representation is its encoding (memcpy, also for arrays of T);
///  - `min_size`:  a lower bound on the encoded size of any T, used to check a decoded count
///                 against the bytes that remain before allocating (0 = unknown);
///  - `save`, `load`, and `explain()`, which fails a static_assert saying why T is not
///    supported (instantiated only for unsupported types).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>

#include "troupe/wire/serialize.hpp"

namespace troupe::wire::detail {

template <class T>
inline constexpr bool dependent_false = false;

/// Most elements a container may hold whose encodings are empty (std::tuple<>, hooks with no
/// fields): they consume no bytes, so the byte count cannot bound them.
inline constexpr std::uint64_t kMaxEmptyElements = std::uint64_t{1} << 24;

template <class T, template <class...> class Tmpl>
inline constexpr bool is_instance_of = false;
template <template <class...> class Tmpl, class... A>
inline constexpr bool is_instance_of<Tmpl<A...>, Tmpl> = true;

template <class T>
inline constexpr bool is_span = false;
template <class T, std::size_t E>
inline constexpr bool is_span<std::span<T, E>> = true;

// ---- user hooks -------------------------------------------------------------------------

/// Stands in for troupe's field visitors when detecting the troupe_fields hook.
struct FieldProbe {
  template <class... F>
  void operator()(F&&...) const noexcept {}
};
/// Stands in for a Boost archive when detecting a Boost.Serialization serialize function.
struct BoostProbe {};

template <class T>
concept has_member_fields = requires(T& t, FieldProbe& a) {
  t.troupe_fields(a);
};
template <class T>
concept has_free_fields = requires(T& t, FieldProbe& a) {
  troupe_fields(a, t);
};
template <class T>
concept has_boost_serialize = use_boost_serialization<T>::value || requires(T& t, BoostProbe& ar) {
  t.serialize(ar, 0u);
} || requires(T& t, BoostProbe& ar) {
  serialize(ar, t, 0u);
};

/// Defined in troupe/wire/boost.hpp, which pulls in Boost's archive headers; only code that
/// sends Boost-serialized types pays for them.
template <class T, class = void>
struct BoostBridge;
template <class T>
concept boost_bridge_visible = requires {
  sizeof(BoostBridge<T>);
};

/// The visitor handed to a troupe_fields hook when saving.
struct FieldSaver {
  Writer& w;
  template <class... F>
  void operator()(const F&... f) const {
    (wire::save(w, f), ...);
  }
};
/// The visitor handed to a troupe_fields hook when loading.
struct FieldLoader {
  Reader& r;
  template <class... F>
  void operator()(F&... f) const {
    (wire::load(r, f), ...);
  }
};

// ---- classification of non-std types --------------------------------------------------------

enum class Kind {
  Reference,
  Function,
  FunctionPointer,
  Pointer,
  MemberPointer,
  ReferenceWrapper,
  View,
  SmartPointer,
  StdFunction,
  Fields,
  Boost,
  Bool,
  Empty,
  Bitwise,
  NotCopyable,
  Unsupported
};

template <class T>
consteval Kind classify() {
  if constexpr (std::is_reference_v<T>) {
    return Kind::Reference;
  } else if constexpr (std::is_function_v<T>) {
    return Kind::Function;
  } else if constexpr (std::is_pointer_v<T> && std::is_function_v<std::remove_pointer_t<T>>) {
    return Kind::FunctionPointer;
  } else if constexpr (std::is_pointer_v<T>) {
    return Kind::Pointer;
  } else if constexpr (std::is_member_pointer_v<T>) {
    return Kind::MemberPointer;
  } else if constexpr (is_instance_of<T, std::reference_wrapper>) {
    return Kind::ReferenceWrapper;
  } else if constexpr (is_instance_of<T, std::basic_string_view> || is_span<T>) {
    return Kind::View;
  } else if constexpr (is_instance_of<T, std::unique_ptr> || is_instance_of<T, std::shared_ptr> ||
                       is_instance_of<T, std::weak_ptr>) {
    return Kind::SmartPointer;
  } else if constexpr (is_instance_of<T, std::function>) {
    return Kind::StdFunction;
  } else if constexpr (has_member_fields<T> || has_free_fields<T>) {
    return Kind::Fields;
  } else if constexpr (has_boost_serialize<T>) {
    return Kind::Boost;
  } else if constexpr (std::is_same_v<T, bool>) {
    return Kind::Bool;
  } else if constexpr (std::is_empty_v<T> && std::is_trivially_copyable_v<T> && std::is_copy_constructible_v<T>) {
    // std::monostate, empty tags: their one byte is padding with no defined value, so it is
    // sent as zero and checked on receipt (found by tests/fuzz/wire_fuzz.cpp).
    return Kind::Empty;
  } else if constexpr (std::is_trivially_copyable_v<T> && !std::is_array_v<T>) {
    // GCC calls std::atomic and structs holding a std::mutex trivially copyable; their bytes
    // do not stand for a value. (Not is_copy_assignable: asking GCC 12 that of a closure type
    // flips its later answer to is_trivially_copyable.)
    if constexpr (std::is_copy_constructible_v<T>) {
      return Kind::Bitwise;
    } else {
      return Kind::NotCopyable;
    }
  } else {
    return Kind::Unsupported;
  }
}

template <class T>
struct Codec;

template <class T>
constexpr void explain();

template <class T>
constexpr void explain_if_unsupported() {
  if constexpr (!Codec<std::remove_cv_t<T>>::supported) explain<T>();
}

template <class T>
constexpr void explain() {
  if constexpr (std::is_void_v<T>) {
    static_assert(dependent_false<T>, "troupe::wire: void cannot be sent as a value");
  } else {
    Codec<std::remove_cv_t<T>>::explain();
  }
}

/// Loads @p count elements one at a time through @p put(index). Element types with an
/// unknown or zero minimum size may consume no bytes, so those are capped at kMaxEmptyElements.
template <class Elem, class Put>
void load_each(Reader& r, std::uint64_t count, std::string_view what, Put&& put) {
  [[maybe_unused]] std::uint64_t empties = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    [[maybe_unused]] const std::size_t before = r.offset();
    put(i, before);
    if constexpr (Codec<Elem>::min_size == 0) {
      if (r.offset() == before && ++empties > kMaxEmptyElements) throw_too_many_empty(what, count, before);
    }
  }
}

/// How many elements to reserve for @p count decoded elements of @p Elem: never more than the
/// remaining bytes could describe, so a bogus count cannot trigger a huge allocation.
template <class Elem>
std::size_t safe_reserve(const Reader& r, std::uint64_t count) {
  const std::size_t per = std::max<std::size_t>({Codec<Elem>::min_size, sizeof(Elem) / 8, 1});
  return static_cast<std::size_t>(std::min<std::uint64_t>(count, r.remaining() / per + 1));
}

inline void save_flag(Writer& w, bool b) {
  const auto byte = static_cast<std::byte>(b ? 1 : 0);
  w.write_bytes(&byte, 1);
}
inline bool load_flag(Reader& r, std::string_view what) {
  std::byte byte{};
  r.read_bytes_for(what, &byte, 1);
  const auto value = std::to_integer<unsigned>(byte);
  if (value > 1) throw_bad_value(what, value, r.offset() - 1, "0 or 1");
  return value == 1;
}

// ---- primary: scalars, trivially copyable types, user hooks, and the rejected ---------------

template <class T>
struct Codec {
  static constexpr Kind kind = classify<T>();
  static constexpr bool supported =
      kind == Kind::Fields || kind == Kind::Boost || kind == Kind::Bool || kind == Kind::Empty || kind == Kind::Bitwise;
  static constexpr bool bitwise = kind == Kind::Bitwise;
  static constexpr std::size_t min_size = [] {
    if constexpr (kind == Kind::Bitwise || kind == Kind::Empty) {
      return sizeof(T);
    } else if constexpr (kind == Kind::Bool) {
      return std::size_t{1};
    } else if constexpr (kind == Kind::Boost) {
      return std::size_t{8};  // the length prefix
    } else {
      return std::size_t{0};
    }
  }();

  static void save(Writer& w, const T& v) {
    if constexpr (kind == Kind::Bitwise) {
      w.write_bytes(&v, sizeof(T));
    } else if constexpr (kind == Kind::Empty) {
      const std::array<std::byte, sizeof(T)> zeros{};
      w.write_bytes(zeros.data(), zeros.size());
    } else if constexpr (kind == Kind::Bool) {
      save_flag(w, v);
    } else if constexpr (kind == Kind::Fields) {
      FieldSaver saver{w};
      // The hook is one non-const function for both directions; the saver only reads.
      auto& obj = const_cast<T&>(v);
      if constexpr (has_member_fields<T>) {
        obj.troupe_fields(saver);
      } else {
        troupe_fields(saver, obj);
      }
    } else if constexpr (kind == Kind::Boost) {
      static_assert(boost_bridge_visible<T>,
                    "troupe::wire: this type is sent with Boost.Serialization; "
                    "#include <troupe/wire/boost.hpp> in the file that sends or receives it");
      BoostBridge<T>::save(w, v);
    }
  }

  static void load(Reader& r, T& v) {
    if constexpr (kind == Kind::Bitwise) {
      r.read_bytes_for(type_name<T>(), &v, sizeof(T));
    } else if constexpr (kind == Kind::Empty) {
      std::array<std::byte, sizeof(T)> bytes{};
      r.read_bytes_for(type_name<T>(), bytes.data(), bytes.size());
      for (const std::byte b : bytes) {
        if (b != std::byte{0})
          throw_bad_value(type_name<T>(), std::to_integer<unsigned>(b), r.offset() - sizeof(T), "0");
      }
      static_cast<void>(v);
    } else if constexpr (kind == Kind::Bool) {
      v = load_flag(r, "bool");
    } else if constexpr (kind == Kind::Fields) {
      FieldLoader loader{r};
      if constexpr (has_member_fields<T>) {
        v.troupe_fields(loader);
      } else {
        troupe_fields(loader, v);
      }
    } else if constexpr (kind == Kind::Boost) {
      static_assert(boost_bridge_visible<T>,
                    "troupe::wire: this type is sent with Boost.Serialization; "
                    "#include <troupe/wire/boost.hpp> in the file that sends or receives it");
      BoostBridge<T>::load(r, v);
    }
  }

  static constexpr void explain() {
    if constexpr (kind == Kind::Reference) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a reference type cannot be sent: send the referred value "
                    "(std::remove_cvref_t<T>) instead");
    } else if constexpr (kind == Kind::Function) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a function cannot be sent as data: pass it to submit(), which "
                    "sends its registered identity");
    } else if constexpr (kind == Kind::FunctionPointer) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a function pointer cannot be sent as data: code addresses "
                    "differ between ranks (ASLR/PIE); pass the function to submit(), which sends "
                    "its registered identity");
    } else if constexpr (kind == Kind::Pointer) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a raw pointer cannot be sent: the address means nothing on "
                    "another rank; send the pointed-to value (e.g. T, std::vector<T>, "
                    "std::string or std::optional<T>) instead");
    } else if constexpr (kind == Kind::MemberPointer) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a pointer to member cannot be sent; send an index or name "
                    "that the receiver maps back to the member");
    } else if constexpr (kind == Kind::ReferenceWrapper) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a std::reference_wrapper cannot be sent: it holds an address "
                    "that means nothing on another rank; send the referred value instead");
    } else if constexpr (kind == Kind::View) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a non-owning view (std::string_view, std::span) cannot be "
                    "sent: it points into this rank's memory; send a std::string or "
                    "std::vector instead");
    } else if constexpr (kind == Kind::SmartPointer) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a smart pointer (std::unique_ptr, std::shared_ptr, "
                    "std::weak_ptr) cannot be sent: addresses and ownership do not cross ranks; "
                    "send the pointed-to value (or std::optional<T>) instead");
    } else if constexpr (kind == Kind::StdFunction) {
      static_assert(dependent_false<T>,
                    "troupe::wire: a std::function cannot be sent: it may hold any callable; "
                    "send plain data, or pass a function or lambda to submit() instead");
    } else if constexpr (kind == Kind::NotCopyable) {
      static_assert(dependent_false<T>,
                    "troupe::wire: this type cannot be sent as bytes: it is trivially copyable but "
                    "not copy-constructible (a std::atomic or a std::mutex inside?); give it a "
                    "troupe_fields hook (TROUPE_FIELDS(...)) listing what to send");
    } else {
      static_assert(
          dependent_false<T>,
          "troupe::wire: this type cannot be sent: it is not trivially copyable, not a "
          "supported std type, and has no troupe_fields hook (TROUPE_FIELDS(...) or "
          "a member/free troupe_fields(A&)) and no Boost.Serialization serialize("
          "Archive&, unsigned); add one (docs/wire.md); the type is the argument of dependent_false<...> here");
    }
  }
};

// ---- C arrays and std::array --------------------------------------------------------------

template <class Elem, std::size_t N>
struct ArrayCodec {
  using E = std::remove_cv_t<Elem>;
  static constexpr bool supported = Codec<E>::supported;
  static constexpr bool bitwise = Codec<E>::bitwise;
  static constexpr std::size_t min_size = N * Codec<E>::min_size;

  template <class A>
  static void save(Writer& w, const A& a) {
    if constexpr (bitwise) {
      w.write_bytes(std::data(a), N * sizeof(E));
    } else {
      for (const auto& e : a) wire::save(w, e);
    }
  }
  template <class A>
  static void load(Reader& r, A& a) {
    if constexpr (bitwise) {
      r.read_bytes_for(type_name<A>(), std::data(a), N * sizeof(E));
    } else {
      for (auto& e : a) wire::load(r, e);
    }
  }
  static constexpr void explain() { explain_if_unsupported<E>(); }
};

template <class T, std::size_t N>
struct Codec<T[N]> : ArrayCodec<T, N> {};
template <class T, std::size_t N>
struct Codec<std::array<T, N>> : ArrayCodec<T, N> {};

// ---- strings --------------------------------------------------------------------------------

template <class C, class Tr, class A>
struct Codec<std::basic_string<C, Tr, A>> {
  using S = std::basic_string<C, Tr, A>;
  static constexpr bool supported = Codec<C>::bitwise;
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = 8;

  static void save(Writer& w, const S& s) {
    w.write_length(s.size());
    w.write_block(s.data(), s.size() * sizeof(C));
  }
  static void load(Reader& r, S& s) {
    const auto n = r.read_block_length(type_name<S>(), sizeof(C));
    s.resize(static_cast<std::size_t>(n));
    r.read_block(type_name<S>(), s.data(), s.size() * sizeof(C));
  }
  static constexpr void explain() {
    static_assert(dependent_false<C>,
                  "troupe::wire: a std::basic_string can be sent only when its character type is "
                  "trivially copyable");
  }
};

// ---- sequences ------------------------------------------------------------------------------

template <class Seq>
struct SequenceCodec {
  using E = typename Seq::value_type;
  static constexpr bool supported = Codec<E>::supported;
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = 8;

  static void save(Writer& w, const Seq& s) {
    w.write_length(s.size());
    if constexpr (Codec<E>::bitwise && is_instance_of<Seq, std::vector>) {
      w.write_block(s.data(), s.size() * sizeof(E));  // the memcpy fast path (or a block)
    } else {
      for (const auto& e : s) wire::save(w, e);
    }
  }
  static void load(Reader& r, Seq& s) {
    constexpr std::string_view what = type_name<Seq>();
    if constexpr (Codec<E>::bitwise && is_instance_of<Seq, std::vector>) {
      const auto n = r.read_block_length(what, sizeof(E));
      s.resize(static_cast<std::size_t>(n));
      r.read_block(what, s.data(), s.size() * sizeof(E));
    } else {
      const auto n = r.read_length(what, Codec<E>::min_size);
      s.clear();
      if constexpr (requires { s.reserve(std::size_t{}); }) s.reserve(safe_reserve<E>(r, n));
      load_each<E>(r, n, what, [&](std::uint64_t, std::size_t) { wire::load(r, s.emplace_back()); });
    }
  }
  static constexpr void explain() { explain_if_unsupported<E>(); }
};

template <class T, class A>
struct Codec<std::vector<T, A>> : SequenceCodec<std::vector<T, A>> {};
template <class T, class A>
struct Codec<std::deque<T, A>> : SequenceCodec<std::deque<T, A>> {};
template <class T, class A>
struct Codec<std::list<T, A>> : SequenceCodec<std::list<T, A>> {};

/// std::vector<bool>: bit-packed, least significant bit first; unused bits must be zero.
template <class A>
struct Codec<std::vector<bool, A>> {
  using V = std::vector<bool, A>;
  static constexpr bool supported = true;
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = 8;

  static void save(Writer& w, const V& v) {
    w.write_length(v.size());
    std::byte acc{0};
    std::size_t bit = 0;
    for (bool b : v) {
      if (b) acc |= static_cast<std::byte>(1u << bit);
      if (++bit == 8) {
        w.write_bytes(&acc, 1);
        acc = std::byte{0};
        bit = 0;
      }
    }
    if (bit != 0) w.write_bytes(&acc, 1);
  }
  static void load(Reader& r, V& v) {
    constexpr std::string_view what = type_name<V>();
    const std::size_t at = r.offset();
    const auto n = r.read_length(what, 0);
    if (n > std::uint64_t{r.remaining()} * 8) throw_bad_count(what, n, 0, at, r.remaining());
    const auto nbytes = static_cast<std::size_t>((n + 7) / 8);
    const auto bits = r.read_view(nbytes);
    v.assign(static_cast<std::size_t>(n), false);
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] = ((std::to_integer<unsigned>(bits[i / 8]) >> (i % 8)) & 1u) != 0;
    }
    if (n % 8 != 0) {
      const unsigned unused = std::to_integer<unsigned>(bits[nbytes - 1]) >> (n % 8);
      if (unused != 0) throw_bad_value(what, unused, r.offset() - 1, "zero padding bits");
    }
  }
  static constexpr void explain() {}
};

// ---- pair and tuple -------------------------------------------------------------------------

template <class A, class B>
struct Codec<std::pair<A, B>> {
  static constexpr bool supported = Codec<std::remove_cv_t<A>>::supported && Codec<std::remove_cv_t<B>>::supported;
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = Codec<std::remove_cv_t<A>>::min_size + Codec<std::remove_cv_t<B>>::min_size;

  static void save(Writer& w, const std::pair<A, B>& p) {
    wire::save(w, p.first);
    wire::save(w, p.second);
  }
  static void load(Reader& r, std::pair<A, B>& p) {
    wire::load(r, p.first);
    wire::load(r, p.second);
  }
  static constexpr void explain() {
    explain_if_unsupported<A>();
    explain_if_unsupported<B>();
  }
};

template <class... Ts>
struct Codec<std::tuple<Ts...>> {
  static constexpr bool supported = (Codec<std::remove_cv_t<Ts>>::supported && ...);
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = (std::size_t{0} + ... + Codec<std::remove_cv_t<Ts>>::min_size);

  static void save(Writer& w, const std::tuple<Ts...>& t) {
    std::apply([&](const auto&... e) { (wire::save(w, e), ...); }, t);
  }
  static void load(Reader& r, std::tuple<Ts...>& t) {
    std::apply([&](auto&... e) { (wire::load(r, e), ...); }, t);
  }
  static constexpr void explain() { (explain_if_unsupported<Ts>(), ...); }
};

// ---- associative containers -----------------------------------------------------------------

template <class M, bool Unique>
struct MapCodec {
  using K = typename M::key_type;
  using V = typename M::mapped_type;
  static constexpr bool supported = Codec<K>::supported && Codec<V>::supported;
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = 8;

  static void save(Writer& w, const M& m) {
    w.write_length(m.size());
    for (const auto& [k, v] : m) {
      wire::save(w, k);
      wire::save(w, v);
    }
  }
  static void load(Reader& r, M& m) {
    constexpr std::string_view what = type_name<M>();
    const auto n = r.read_length(what, Codec<K>::min_size + Codec<V>::min_size);
    m.clear();
    if constexpr (requires { m.reserve(std::size_t{}); }) m.reserve(safe_reserve<typename M::value_type>(r, n));
    load_each<std::pair<K, V>>(r, n, what, [&](std::uint64_t i, std::size_t at) {
      K k{};
      V v{};
      wire::load(r, k);
      wire::load(r, v);
      const std::size_t before = m.size();
      m.emplace_hint(m.end(), std::move(k), std::move(v));
      if (Unique && m.size() == before) throw_duplicate_key(what, i, at);
    });
  }
  static constexpr void explain() {
    explain_if_unsupported<K>();
    explain_if_unsupported<V>();
  }
};

template <class S, bool Unique>
struct SetCodec {
  using K = typename S::key_type;
  static constexpr bool supported = Codec<K>::supported;
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = 8;

  static void save(Writer& w, const S& s) {
    w.write_length(s.size());
    for (const auto& k : s) wire::save(w, k);
  }
  static void load(Reader& r, S& s) {
    constexpr std::string_view what = type_name<S>();
    const auto n = r.read_length(what, Codec<K>::min_size);
    s.clear();
    if constexpr (requires { s.reserve(std::size_t{}); }) s.reserve(safe_reserve<K>(r, n));
    load_each<K>(r, n, what, [&](std::uint64_t i, std::size_t at) {
      K k{};
      wire::load(r, k);
      const std::size_t before = s.size();
      s.emplace_hint(s.end(), std::move(k));
      if (Unique && s.size() == before) throw_duplicate_key(what, i, at);
    });
  }
  static constexpr void explain() { explain_if_unsupported<K>(); }
};

template <class K, class V, class C, class A>
struct Codec<std::map<K, V, C, A>> : MapCodec<std::map<K, V, C, A>, true> {};
template <class K, class V, class C, class A>
struct Codec<std::multimap<K, V, C, A>> : MapCodec<std::multimap<K, V, C, A>, false> {};
template <class K, class V, class H, class E, class A>
struct Codec<std::unordered_map<K, V, H, E, A>> : MapCodec<std::unordered_map<K, V, H, E, A>, true> {};
template <class K, class V, class H, class E, class A>
struct Codec<std::unordered_multimap<K, V, H, E, A>> : MapCodec<std::unordered_multimap<K, V, H, E, A>, false> {};
template <class K, class C, class A>
struct Codec<std::set<K, C, A>> : SetCodec<std::set<K, C, A>, true> {};
template <class K, class C, class A>
struct Codec<std::multiset<K, C, A>> : SetCodec<std::multiset<K, C, A>, false> {};
template <class K, class H, class E, class A>
struct Codec<std::unordered_set<K, H, E, A>> : SetCodec<std::unordered_set<K, H, E, A>, true> {};
template <class K, class H, class E, class A>
struct Codec<std::unordered_multiset<K, H, E, A>> : SetCodec<std::unordered_multiset<K, H, E, A>, false> {};

// ---- optional, variant ----------------------------------------------------------------------

template <class T>
struct Codec<std::optional<T>> {
  static constexpr bool supported = Codec<T>::supported;
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = 1;

  static void save(Writer& w, const std::optional<T>& o) {
    save_flag(w, o.has_value());
    if (o) wire::save(w, *o);
  }
  static void load(Reader& r, std::optional<T>& o) {
    if (load_flag(r, type_name<std::optional<T>>())) {
      wire::load(r, o.emplace());
    } else {
      o.reset();
    }
  }
  static constexpr void explain() { explain_if_unsupported<T>(); }
};

template <class... Ts>
struct Codec<std::variant<Ts...>> {
  using V = std::variant<Ts...>;
  using Index = std::conditional_t<(sizeof...(Ts) < 256), std::uint8_t, std::uint32_t>;
  static constexpr bool supported = (Codec<Ts>::supported && ...);
  static constexpr bool bitwise = false;
  static constexpr std::size_t min_size = sizeof(Index);

  static void save(Writer& w, const V& v) {
    if (v.valueless_by_exception()) throw_valueless_variant(type_name<V>());
    std::array<std::byte, sizeof(Index)> le;
    store_le(le.data(), static_cast<Index>(v.index()));
    w.write_bytes(le.data(), le.size());
    save_alternative(w, v, std::index_sequence_for<Ts...>{});
  }
  static void load(Reader& r, V& v) {
    constexpr std::string_view what = type_name<V>();
    std::array<std::byte, sizeof(Index)> le;
    r.read_bytes_for(what, le.data(), le.size());
    const auto index = load_le<Index>(le.data());
    if (index >= sizeof...(Ts)) {
      throw_bad_value(what, index, r.offset() - sizeof(Index), kIndexExpectation);
    }
    load_alternative(r, v, index, std::index_sequence_for<Ts...>{});
  }
  static constexpr void explain() { (explain_if_unsupported<Ts>(), ...); }

 private:
  static constexpr std::string_view kIndexExpectation = "an alternative index below the number of alternatives";

  template <std::size_t... I>
  static void save_alternative(Writer& w, const V& v, std::index_sequence<I...>) {
    ((v.index() == I ? wire::save(w, *std::get_if<I>(&v)) : void()), ...);
  }
  template <std::size_t... I>
  static void load_alternative(Reader& r, V& v, std::size_t index, std::index_sequence<I...>) {
    ((index == I ? wire::load(r, v.template emplace<I>()) : void()), ...);
  }
};

// ---- chrono ---------------------------------------------------------------------------------

template <class Rep, class Period>
struct Codec<std::chrono::duration<Rep, Period>> {
  using D = std::chrono::duration<Rep, Period>;
  static constexpr bool supported = Codec<Rep>::supported;
  static constexpr bool bitwise = Codec<Rep>::bitwise;
  static constexpr std::size_t min_size = Codec<Rep>::min_size;

  static void save(Writer& w, const D& d) { wire::save(w, d.count()); }
  static void load(Reader& r, D& d) {
    Rep count{};
    wire::load(r, count);
    d = D(count);
  }
  static constexpr void explain() { explain_if_unsupported<Rep>(); }
};

/// Sent as the duration since the clock's epoch: meaningful across hosts for system_clock,
/// not for steady_clock (whose epoch is per host).
template <class Clock, class Dur>
struct Codec<std::chrono::time_point<Clock, Dur>> {
  using P = std::chrono::time_point<Clock, Dur>;
  static constexpr bool supported = Codec<Dur>::supported;
  static constexpr bool bitwise = Codec<Dur>::bitwise;
  static constexpr std::size_t min_size = Codec<Dur>::min_size;

  static void save(Writer& w, const P& p) { wire::save(w, p.time_since_epoch()); }
  static void load(Reader& r, P& p) {
    Dur d{};
    wire::load(r, d);
    p = P(d);
  }
  static constexpr void explain() { explain_if_unsupported<Dur>(); }
};

// ---- blocks ---------------------------------------------------------------------------------

/// Whether @p v may hold a block (a contiguous part of at least kBlockMin bytes that a
/// block-enabled Writer records by reference): exact for scalars, vectors of trivially
/// copyable elements, strings and vectors of these; true for anything else (a guess that
/// only chooses the path, both are correct).
template <class T>
bool may_hold_blocks(const T& v) {
  if constexpr (Codec<T>::bitwise || std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    static_cast<void>(v);
    return false;
  } else if constexpr (is_instance_of<T, std::basic_string>) {
    return v.size() * sizeof(typename T::value_type) >= kBlockMin;
  } else if constexpr (is_instance_of<T, std::vector>) {
    using E = typename T::value_type;
    if constexpr (std::is_same_v<E, bool>) {
      return false;
    } else if constexpr (Codec<E>::bitwise) {
      return v.size() * sizeof(E) >= kBlockMin;
    } else {
      return std::any_of(v.begin(), v.end(), [](const E& e) { return may_hold_blocks(e); });
    }
  } else {
    static_cast<void>(v);
    return true;
  }
}

// ---- size hints -----------------------------------------------------------------------------

/// A cheap guess of the encoded size, so serialize() allocates once for the common cases.
template <class T>
std::size_t size_hint(const T& v) {
  if constexpr (Codec<T>::bitwise) {
    return sizeof(T);
  } else if constexpr (is_instance_of<T, std::vector> || is_instance_of<T, std::basic_string>) {
    using E = typename T::value_type;
    if constexpr (Codec<E>::bitwise) {
      return 8 + v.size() * sizeof(E);
    } else {
      return 8 + v.size() * std::max<std::size_t>(Codec<E>::min_size, 1);
    }
  } else {
    return 64;
  }
}

}  // namespace troupe::wire::detail
