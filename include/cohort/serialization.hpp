/// @file cohort/serialization.hpp
/// How a C++ type travels in a message: raw bytes, cereal, or Boost.Serialization. The choice is
/// made at compile time from the type, in this order:
///   1. a specialization of cohort::message_format<T> (an explicit choice);
///   2. raw: trivially copyable types (scalars, std::array, plain structs), and contiguous
///      containers of them (std::vector<T>, std::span<T>, std::basic_string) — copied as bytes;
///   3. Boost: a type with a member `serialize(Archive&, unsigned int)` (the Boost convention);
///   4. cereal: a type cereal can save and load with a binary archive (member or free
///      `serialize(Archive&)`, `save`/`load`, and the standard containers whose cereal header is
///      included; <cereal/types/vector.hpp> and <cereal/types/string.hpp> are included here);
///   5. anything else fails to compile with a message saying what to add.
/// A serialized value travels as one message, so any-source receives and probes work for it.
///
/// Example:
/// @code
///   struct Particle {                       // cereal
///     std::string name; double mass;
///     template <class A> void serialize(A& ar) { ar(name, mass); }
///   };
///   struct Cell {                           // Boost.Serialization
///     std::vector<int> ids;
///     template <class A> void serialize(A& ar, unsigned) { ar & ids; }
///   };
///   comm.send(Particle{"p", 1.0}, 1, cohort::Tag{0});
///   Cell c = comm.recv<Cell>(0, cohort::Tag{1});
///   // Choose explicitly (e.g. a cereal type with a versioned serialize):
///   template <> struct cohort::message_format<MyType>
///       : std::integral_constant<cohort::MessageFormat, cohort::MessageFormat::cereal> {};
/// @endcode
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include <boost/archive/binary_iarchive_impl.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/detail/register_archive.hpp>
// The template definitions behind binary_iarchive, which libboost_serialization instantiates only
// for its own archives; CheckedBinaryIArchive (below) is a derived archive of the documented kind.
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>
#include <boost/archive/impl/basic_binary_iprimitive.ipp>
#include <boost/serialization/collection_size_type.hpp>
#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cereal/version.hpp>

#include "cohort/detail/copy.hpp"
#include "cohort/detail/p2p_traits.hpp"

namespace cohort::detail {

/// cereal's binary format, written straight into a byte vector (no iostream: cereal's
/// BinaryOutputArchive costs a virtual streambuf call per field). The vector's size is used as
/// room to write into and cut to the bytes written by finish(), so a vector reused for messages of
/// similar size is neither grown nor zeroed again; a field is one inlined copy and a compare.
/// One archive serves many messages (see with_archive): start() points it at the next one.
/// Marks a reused archive that cereal may have left state in (see leaves_state, with_archive).
class ArchiveStateFlag {
 public:
  [[nodiscard]] bool holds_state() const noexcept { return holds_state_; }
  void mark_state() noexcept { holds_state_ = true; }

 private:
  bool holds_state_ = false;
};

class CerealWriter : public cereal::OutputArchive<CerealWriter, cereal::AllowEmptyClassElision>,
                     public ArchiveStateFlag {
 public:
  CerealWriter() : cereal::OutputArchive<CerealWriter, cereal::AllowEmptyClassElision>(this) {}
  void start(std::vector<std::byte>& out) noexcept {
    out_ = &out;
    at_ = 0;
  }
  void saveBinary(const void* data, std::size_t size) {
    if (out_->size() - at_ < size) [[unlikely]] grow(size);
    copy_bytes(out_->data() + at_, data, size);  // an empty vector's data() is null: fine
    at_ += size;
  }
  /// Cuts the vector to the bytes written.
  void finish() { out_->resize(at_); }

 private:
  [[gnu::noinline]] void grow(std::size_t size) {
    out_->resize(std::max({out_->size() * 2, at_ + size, std::size_t{256}}));
  }
  std::vector<std::byte>* out_ = nullptr;
  std::size_t at_ = 0;
};

/// Reads what CerealWriter wrote; throws cereal::Exception when the payload is too short.
class CerealReader : public cereal::InputArchive<CerealReader, cereal::AllowEmptyClassElision>,
                     public ArchiveStateFlag {
 public:
  CerealReader() : cereal::InputArchive<CerealReader, cereal::AllowEmptyClassElision>(this) {}
  void start(std::span<const std::byte> in) noexcept {
    at_ = in.data();
    end_ = in.data() + in.size();
  }
  void loadBinary(void* data, std::size_t size) {
    if (size > static_cast<std::size_t>(end_ - at_)) [[unlikely]] too_short(size);
    copy_bytes(data, at_, size);
    at_ += size;
  }
  [[nodiscard]] std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - at_); }
  /// Throws for a container count larger than the bytes left (each element takes at least one).
  [[noreturn, gnu::cold, gnu::noinline]] void corrupt_count(std::uint64_t count) const {
    throw cereal::Exception("corrupt payload: a count of " + std::to_string(count) + " with " +
                            std::to_string(remaining()) + " bytes left");
  }

 private:
  [[noreturn, gnu::cold, gnu::noinline]] void too_short(std::size_t size) const {
    throw cereal::Exception("payload too short: " + std::to_string(size) + " bytes wanted, " +
                            std::to_string(end_ - at_) + " left");
  }
  const std::byte* at_ = nullptr;
  const std::byte* end_ = nullptr;
};

// Reusing archives. Building and destroying a cereal archive (four hash tables, two vectors) cost
// ~250 instructions per message on each side, more than the rest of the cereal path; so each
// thread keeps one writer and one reader. That is only correct while an archive holds no state
// from an earlier message. In cereal 1.3 an archive gains state from exactly these: shared-pointer
// ids and polymorphic type names (reached only through a smart pointer), class versions (a
// versioned serialize/save/load, also of a base class), virtual base classes and deferred data.
// cereal calls prologue() before it processes any value, so the prologues below mark the archive
// when such a value is about to be processed, and with_archive() replaces a marked archive.
static_assert(CEREAL_VERSION_MAJOR == 1 && CEREAL_VERSION_MINOR == 3,
              "cohort: archive reuse (leaves_state) was checked against cereal 1.3; re-check it");

template <class T>
struct is_smart_pointer : std::false_type {};
template <class T>
struct is_smart_pointer<std::shared_ptr<T>> : std::true_type {};
template <class T>
struct is_smart_pointer<std::weak_ptr<T>> : std::true_type {};
template <class T, class D>
struct is_smart_pointer<std::unique_ptr<T, D>> : std::true_type {};

template <class T, class A>
constexpr bool versioned_in() {
  namespace tr = cereal::traits;
  if constexpr (std::is_same_v<A, CerealWriter>) {
    return tr::has_member_versioned_serialize<T, A>::value ||
           tr::has_non_member_versioned_serialize<T, A>::value ||
           tr::has_member_versioned_save<T, A>::value || tr::has_non_member_versioned_save<T, A>::value ||
           tr::has_member_versioned_save_minimal<T, A>::value ||
           tr::has_non_member_versioned_save_minimal<T, A>::value;
  } else {
    return tr::has_member_versioned_serialize<T, A>::value ||
           tr::has_non_member_versioned_serialize<T, A>::value ||
           tr::has_member_versioned_load<T, A>::value || tr::has_non_member_versioned_load<T, A>::value ||
           tr::has_member_versioned_load_minimal<T, A>::value ||
           tr::has_non_member_versioned_load_minimal<T, A>::value;
  }
}

template <class T>
struct archive_wrapper_kind : std::integral_constant<int, 0> {};
template <class T>
struct archive_wrapper_kind<cereal::base_class<T>> : std::integral_constant<int, 1> {};
template <class T>
struct archive_wrapper_kind<cereal::virtual_base_class<T>> : std::integral_constant<int, 2> {};
template <class T>
struct archive_wrapper_kind<cereal::DeferredData<T>> : std::integral_constant<int, 2> {};

/// Whether processing a T in archive A may leave state in A (see above).
template <class T, class A>
constexpr bool leaves_state() {
  using U = std::remove_cvref_t<T>;
  if constexpr (is_smart_pointer<U>::value || archive_wrapper_kind<U>::value == 2) {
    return true;
  } else if constexpr (archive_wrapper_kind<U>::value == 1) {
    return versioned_in<std::remove_cvref_t<decltype(*std::declval<U>().base_ptr)>, A>();
  } else if constexpr (std::is_class_v<U>) {
    return versioned_in<U, A>();
  } else {
    return false;
  }
}

template <class T>
void prologue(CerealWriter& ar, const T& /*value*/) {
  if constexpr (leaves_state<T, CerealWriter>()) ar.mark_state();
}
template <class T>
void prologue(CerealReader& ar, const T& /*value*/) {
  if constexpr (leaves_state<T, CerealReader>()) ar.mark_state();
}

/// Runs fn(archive) on this thread's archive of type A, replacing it afterwards if it now holds
/// state; a nested call (a serialize() that itself sends a message) gets a fresh archive.
template <class A, class Fn>
void with_archive(Fn&& fn) {
  thread_local std::optional<A> kept;
  thread_local bool busy = false;
  if (busy) {
    A fresh;
    fn(fresh);
    return;
  }
  if (!kept) kept.emplace();
  busy = true;
  struct Release {
    ~Release() {
      busy = false;
      if (kept->holds_state()) kept.reset();
    }
  } release;
  fn(*kept);
}

}  // namespace cohort::detail

namespace cereal {
template <class T>
inline std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(cohort::detail::CerealWriter& ar,
                                                                           const T& t) {
  ar.saveBinary(std::addressof(t), sizeof(t));
}
template <class T>
inline std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(cohort::detail::CerealReader& ar,
                                                                           T& t) {
  ar.loadBinary(std::addressof(t), sizeof(t));
}
template <class Archive, class T>
inline CEREAL_ARCHIVE_RESTRICT(cohort::detail::CerealReader, cohort::detail::CerealWriter)
    CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, NameValuePair<T>& t) {
  ar(t.value);
}
template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(cohort::detail::CerealWriter& ar, const SizeTag<T>& t) {
  ar(t.size);
}
// A container's element count comes from another process: each element takes at least one byte,
// so a count larger than the bytes left is corrupt (checked before the container is resized to it).
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(cohort::detail::CerealReader& ar, SizeTag<T>& t) {
  ar(t.size);
  if (static_cast<std::uint64_t>(t.size) > ar.remaining()) [[unlikely]] {
    ar.corrupt_count(static_cast<std::uint64_t>(t.size));
  }
}
template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(cohort::detail::CerealWriter& ar, const BinaryData<T>& bd) {
  ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(cohort::detail::CerealReader& ar, BinaryData<T>& bd) {
  ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}
}  // namespace cereal

CEREAL_REGISTER_ARCHIVE(cohort::detail::CerealWriter)
CEREAL_REGISTER_ARCHIVE(cohort::detail::CerealReader)
CEREAL_SETUP_ARCHIVE_TRAITS(cohort::detail::CerealReader, cohort::detail::CerealWriter)

namespace cohort {

/// How a message's payload is encoded; carried in every message header.
enum class MessageFormat : std::uint8_t { raw = 0, cereal = 1, boost = 2 };

/// Specialize with `static constexpr MessageFormat value` to choose a type's format explicitly.
template <class T>
struct message_format {};

namespace detail {

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_string : std::false_type {};
template <class C, class Tr, class A>
struct is_string<std::basic_string<C, Tr, A>> : std::true_type {};

/// A value copied as its bytes.
template <class T>
concept RawValue = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> &&
                   !std::is_member_pointer_v<T> && !is_span<T>::value;

/// A contiguous container of raw values.
template <class T>
concept RawContainer = (is_vector<T>::value && RawValue<typename T::value_type> &&
                        !std::is_same_v<typename T::value_type, bool>) ||
                       is_string<T>::value ||
                       (is_span<T>::value && RawValue<std::remove_cv_t<typename T::element_type>>);

// An archive that accepts anything, used only to detect a Boost-style serialize member.
struct DetectArchive {
  template <class U>
  DetectArchive& operator&(U&&);
  template <class U>
  DetectArchive& operator<<(U&&);
  template <class U>
  DetectArchive& operator>>(U&&);
};

template <class T>
concept BoostSerializable = requires(T& t, DetectArchive& a) { t.serialize(a, 0u); };

template <class T>
concept CerealSerializable = cereal::traits::is_output_serializable<T, CerealWriter>::value &&
                             cereal::traits::is_input_serializable<T, CerealReader>::value;

template <class T>
concept ExplicitFormat = requires { message_format<T>::value; };

template <class T>
constexpr int format_code() {
  if constexpr (ExplicitFormat<T>) return static_cast<int>(message_format<T>::value);
  else if constexpr (RawValue<T> || RawContainer<T>) return static_cast<int>(MessageFormat::raw);
  else if constexpr (BoostSerializable<T>) return static_cast<int>(MessageFormat::boost);
  else if constexpr (CerealSerializable<T>) return static_cast<int>(MessageFormat::cereal);
  else return -1;
}

}  // namespace detail

/// A type Cohort can send: raw, cereal or Boost (see the file comment).
template <class T>
concept Transmittable = (detail::format_code<std::remove_cvref_t<T>>() >= 0);

/// The format `T` travels in.
template <Transmittable T>
inline constexpr MessageFormat format_of =
    static_cast<MessageFormat>(detail::format_code<std::remove_cvref_t<T>>());

namespace detail {

/// Fails the build with a readable message when T cannot be sent.
template <class T>
constexpr void check_transmittable() {
  static_assert(Transmittable<T>,
                "cohort: this type cannot be sent: it is not trivially copyable, not a contiguous "
                "container of trivially copyable values, and has no cereal serialize()/save()/"
                "load() nor a Boost serialize(Archive&, unsigned). Add one of those, or specialize "
                "cohort::message_format<T>.");
  static_assert(!std::is_pointer_v<T>,
                "cohort: cannot send a pointer; send the object or a std::span of it");
}

/// A stable-per-build number naming a type, checked on receipt of serialized messages.
template <class T>
std::uint32_t type_fingerprint() noexcept {
  static const std::uint32_t fp = [] {
    std::uint32_t h = 2166136261u;
    for (const char* p = typeid(T).name(); *p != '\0'; ++p) {
      h = (h ^ static_cast<unsigned char>(*p)) * 16777619u;
    }
    return h;
  }();
  return fp;
}

/// A streambuf appending to a byte vector.
class ByteSink final : public std::streambuf {
 public:
  void reset(std::vector<std::byte>* out) noexcept {
    out_ = out;
    out_->clear();
  }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    auto* b = reinterpret_cast<const std::byte*>(s);
    out_->insert(out_->end(), b, b + n);
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      out_->push_back(static_cast<std::byte>(traits_type::to_char_type(c)));
    }
    return traits_type::not_eof(c);
  }

 private:
  std::vector<std::byte>* out_ = nullptr;
};

/// A streambuf reading a byte span.
class ByteSource final : public std::streambuf {
 public:
  ByteSource() = default;
  explicit ByteSource(std::span<const std::byte> in) noexcept { reset(in); }
  void reset(std::span<const std::byte> in) noexcept {
    char* p = const_cast<char*>(reinterpret_cast<const char*>(in.data()));
    setg(p, p, p + in.size());
  }
  [[nodiscard]] std::size_t remaining() const noexcept {
    return static_cast<std::size_t>(egptr() - gptr());
  }
};

/// Boost's binary input archive (the same format binary_oarchive writes) that checks every size it
/// reads from the payload before acting on it: a collection's element count and a string's length
/// must not exceed the bytes left (every element takes at least one byte), so a corrupt payload
/// fails with std::length_error (a DeserializeError for the receiver) instead of making Boost
/// allocate whatever it claims (binary_iarchive sizes strings and containers first).
class CheckedBinaryIArchive
    : public boost::archive::binary_iarchive_impl<CheckedBinaryIArchive, char, std::char_traits<char>> {
  using Base = boost::archive::binary_iarchive_impl<CheckedBinaryIArchive, char, std::char_traits<char>>;

 public:
  CheckedBinaryIArchive(ByteSource& source, unsigned flags) : Base(source, flags), source_(source) {
    init(flags);
  }

  // Boost's archive classes call the overrides below through the most derived type.
  friend class boost::archive::detail::interface_iarchive<CheckedBinaryIArchive>;
  friend class boost::archive::basic_binary_iarchive<CheckedBinaryIArchive>;
  friend class boost::archive::basic_binary_iprimitive<CheckedBinaryIArchive, char, std::char_traits<char>>;
  friend class boost::archive::load_access;

 protected:
  template <class T>
  void load_override(T& t) {
    Base::load_override(t);
  }
  void load_override(boost::serialization::collection_size_type& t) {
    Base::load_override(t);
    check(static_cast<const boost::serialization::collection_size_type&>(t), "a collection of");
  }
  using Base::load;
  void load(std::string& s) {
    std::size_t length = 0;
    this->load_binary(&length, sizeof length);
    check(length, "a string of");
    s.resize(length);
    if (length != 0) this->load_binary(s.data(), length);
  }

 private:
  void check(std::size_t claimed, const char* what) const {
    if (claimed > source_.remaining()) [[unlikely]] too_big(claimed, what);
  }
  [[noreturn, gnu::cold, gnu::noinline]] void too_big(std::size_t claimed, const char* what) const {
    throw std::length_error(std::string("corrupt payload: ") + what + " " + std::to_string(claimed) +
                            " with " + std::to_string(source_.remaining()) + " bytes left");
  }
  ByteSource& source_;
};

inline constexpr unsigned kBoostArchiveFlags =
    boost::archive::no_header | boost::archive::no_codecvt | boost::archive::no_tracking;

/// Encodes a serialized (non-raw) value into `out` (cleared first).
template <class T>
void encode(const T& value, std::vector<std::byte>& out) {
  if constexpr (format_of<T> == MessageFormat::cereal) {
    with_archive<CerealWriter>([&](CerealWriter& ar) {
      ar.start(out);
      ar(value);
      ar.finish();
    });
  } else {
    thread_local ByteSink sink;
    sink.reset(&out);
    boost::archive::binary_oarchive ar(sink, kBoostArchiveFlags);
    ar << value;
  }
}

/// Decodes a serialized value; throws on a malformed payload or leftover bytes.
template <class T>
void decode(std::span<const std::byte> bytes, T& value) {
  std::size_t left = 0;
  if constexpr (format_of<T> == MessageFormat::cereal) {
    with_archive<CerealReader>([&](CerealReader& ar) {
      ar.start(bytes);
      ar(value);
      left = ar.remaining();
    });
  } else {
    thread_local ByteSource source;  // reused: a streambuf's constructor copies the global locale
    source.reset(bytes);
    CheckedBinaryIArchive ar(source, kBoostArchiveFlags);
    ar >> value;
    left = source.remaining();
  }
  if (left != 0) throw std::length_error(std::to_string(left) + " bytes were left over after decoding");
}

}  // namespace detail
}  // namespace cohort

BOOST_SERIALIZATION_REGISTER_ARCHIVE(cohort::detail::CheckedBinaryIArchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(cohort::detail::CheckedBinaryIArchive)
