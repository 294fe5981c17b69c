// Serialized payloads (cohort/serialization.hpp): each thread reuses one cereal archive for many
// messages, so every message must still decode on its own. These tests send values that leave
// state in a cereal archive (class versions, shared pointers, virtual bases, deferred data) next
// to plain ones, and check that each payload is the same as a fresh archive's and decodes alone.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/types/base_class.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include "cohort/serialization.hpp"

namespace {

using cohort::detail::decode;
using cohort::detail::encode;
using Bytes = std::vector<std::byte>;

struct Plain {
  int id = 0;
  std::string name;
  template <class A>
  void serialize(A& ar) {
    ar(id, name);
  }
  bool operator==(const Plain&) const = default;
};

// A versioned serialize: cereal writes the version once per archive and type.
struct Versioned {
  int value = 0;
  std::uint32_t seen_version = 0;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    ar(value);
    seen_version = version;
  }
};

struct VersionedBase {
  int base = 0;
  std::uint32_t seen_version = 0;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    ar(base);
    seen_version = version;
  }
};

// Only its base class is versioned, and cereal processes a base class without a prologue of its
// own type.
struct Derived : VersionedBase {
  std::string own;  // not trivially copyable, so it travels through cereal
  template <class A>
  void serialize(A& ar) {
    ar(cereal::base_class<VersionedBase>(this), own);
  }
};

struct VirtualBase {
  int v = 0;
  template <class A>
  void serialize(A& ar) {
    ar(v);
  }
};
struct Left : virtual VirtualBase {
  template <class A>
  void serialize(A& ar) {
    ar(cereal::virtual_base_class<VirtualBase>(this));
  }
};
struct Right : virtual VirtualBase {
  template <class A>
  void serialize(A& ar) {
    ar(cereal::virtual_base_class<VirtualBase>(this));
  }
};
struct Diamond : Left, Right {
  int d = 0;
  template <class A>
  void serialize(A& ar) {
    ar(cereal::base_class<Left>(this), cereal::base_class<Right>(this), d);
  }
};

struct Shared {
  std::shared_ptr<int> a, b;  // the same object twice: cereal writes it once, then its id
  template <class A>
  void serialize(A& ar) {
    ar(a, b);
  }
};

struct Deferred {
  int head = 0;
  std::shared_ptr<int> later;
  template <class A>
  void serialize(A& ar) {
    ar(head, cereal::defer(later));
    ar.serializeDeferments();
  }
};

// Its save() encodes another message on the same thread, as a user's serialize() that sends a
// message would: the inner encode must not use the archive the outer one is writing with.
struct Nested {
  Plain inner;
  template <class A>
  void save(A& ar) const {
    Bytes bytes;
    encode(inner, bytes);
    ar(bytes);
  }
  template <class A>
  void load(A& ar) {
    Bytes bytes;
    ar(bytes);
    decode(std::span<const std::byte>(bytes), inner);
  }
};

}  // namespace

CEREAL_CLASS_VERSION(Versioned, 7)
CEREAL_CLASS_VERSION(VersionedBase, 3)

// A versioned serialize(Archive&, std::uint32_t) looks like Boost's convention, and the struct is
// trivially copyable (raw): say it is cereal.
template <>
struct cohort::message_format<Versioned>
    : std::integral_constant<cohort::MessageFormat, cohort::MessageFormat::cereal> {};

namespace {

/// What a new archive writes for `value`: the reference every reused-archive payload must match.
template <class T>
Bytes fresh_encoding(const T& value) {
  Bytes out;
  cohort::detail::CerealWriter ar;
  ar.start(out);
  ar(value);
  ar.finish();
  return out;
}

template <class T>
T decoded(const Bytes& bytes) {
  T out{};
  decode(std::span<const std::byte>(bytes), out);
  return out;
}

/// The stateful values both reuse tests send.
struct Samples {
  Versioned versioned;
  Derived derived;
  Diamond diamond;
  Shared shared;
  Samples() {
    versioned.value = 5;
    derived.base = 8;
    derived.own = "nine";
    diamond.v = 11;
    diamond.d = 12;
    auto one = std::make_shared<int>(13);
    shared = Shared{one, one};
  }
};

TEST(Serialization, ReusedArchiveWritesEachMessageAsAFreshOneWould) {
  const Plain plain{42, "particle-42"};
  const Samples x;
  const auto& [versioned, derived, diamond, shared] = x;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    Bytes bytes;
    encode(plain, bytes);
    EXPECT_EQ(bytes, fresh_encoding(plain));
    encode(versioned, bytes);
    EXPECT_EQ(bytes, fresh_encoding(versioned));
    encode(derived, bytes);
    EXPECT_EQ(bytes, fresh_encoding(derived));
    encode(diamond, bytes);
    EXPECT_EQ(bytes, fresh_encoding(diamond));
    encode(shared, bytes);
    EXPECT_EQ(bytes, fresh_encoding(shared));
  }
}

TEST(Serialization, ReusedArchiveReadsEachMessageOnItsOwn) {
  const Samples x;
  const Bytes v = fresh_encoding(x.versioned), d = fresh_encoding(x.derived),
              dia = fresh_encoding(x.diamond), s = fresh_encoding(x.shared);
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    Versioned gv = decoded<Versioned>(v);
    EXPECT_EQ(gv.value, 5);
    EXPECT_EQ(gv.seen_version, 7u);
    Derived gd = decoded<Derived>(d);
    EXPECT_EQ(gd.base, 8);
    EXPECT_EQ(gd.own, "nine");
    EXPECT_EQ(gd.seen_version, 3u);
    Diamond gdia = decoded<Diamond>(dia);
    EXPECT_EQ(gdia.v, 11);
    EXPECT_EQ(gdia.d, 12);
    Shared gs = decoded<Shared>(s);
    ASSERT_NE(gs.a, nullptr);
    EXPECT_EQ(*gs.a, 13);
    EXPECT_EQ(gs.a, gs.b);  // one object again, not two
    EXPECT_EQ(decoded<Plain>(fresh_encoding(Plain{1, "x"})), (Plain{1, "x"}));
  }
}

TEST(Serialization, DeferredDataDoesNotCarryOver) {
  Deferred value;
  value.head = 1;
  value.later = std::make_shared<int>(2);
  for (int round = 0; round < 3; ++round) {
    Bytes bytes;
    encode(value, bytes);
    EXPECT_EQ(bytes, fresh_encoding(value));
    Deferred back = decoded<Deferred>(bytes);
    EXPECT_EQ(back.head, 1);
    ASSERT_NE(back.later, nullptr);
    EXPECT_EQ(*back.later, 2);
  }
}

TEST(Serialization, ASerializeThatEncodesAnotherMessageGetsItsOwnArchive) {
  const Nested value{Plain{3, "inner"}};
  for (int round = 0; round < 3; ++round) {
    Bytes bytes;
    encode(value, bytes);
    EXPECT_EQ(bytes, fresh_encoding(value));
    EXPECT_EQ(decoded<Nested>(bytes).inner, (Plain{3, "inner"}));
  }
}

TEST(Serialization, AFailedDecodeLeavesTheNextOneIntact) {
  Bytes good;
  encode(Plain{4, "four"}, good);
  Bytes cut(good.begin(), good.end() - 2);
  Plain out;
  EXPECT_THROW(decode(std::span<const std::byte>(cut), out), std::exception);
  Bytes longer = good;
  longer.push_back(std::byte{0});
  EXPECT_THROW(decode(std::span<const std::byte>(longer), out), std::length_error);
  EXPECT_EQ(decoded<Plain>(good), (Plain{4, "four"}));
}

TEST(Serialization, ReusedOutputVectorIsCutToEachMessage) {
  Bytes bytes;
  encode(Plain{1, std::string(1000, 'a')}, bytes);
  EXPECT_EQ(bytes.size(), 4 + 8 + 1000u);
  encode(Plain{2, "b"}, bytes);  // shorter than the last: the vector shrinks to it
  EXPECT_EQ(bytes.size(), 4 + 8 + 1u);
  EXPECT_EQ(decoded<Plain>(bytes), (Plain{2, "b"}));
}

}  // namespace

namespace {

struct WithVector {
  std::vector<int> values;
  template <class A>
  void serialize(A& ar) {
    ar(values);
  }
};

// An empty std::vector's data() is null: writing its zero bytes must not pass null to memcpy
// (UBSan reports it), into an empty output vector too.
TEST(Serialization, EmptyContainersEncodeAndDecode) {
  Bytes bytes;
  encode(WithVector{}, bytes);
  EXPECT_EQ(bytes.size(), 8u);  // the count only
  EXPECT_TRUE(decoded<WithVector>(bytes).values.empty());
}

}  // namespace

// Boost.Serialization payloads go through CheckedBinaryIArchive: Boost's format, with every size
// read from the payload checked against the bytes left before anything is allocated for it.
#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <cstring>
#include <map>

namespace {

struct BoostRecord {
  int id = 0;
  std::string name;
  std::vector<int> values;
  std::map<std::string, int> index;
  std::vector<std::string> words;
  template <class A>
  void serialize(A& ar, unsigned /*version*/) {
    ar & id & name & values & index & words;
  }
  bool operator==(const BoostRecord&) const = default;
};
// A std::vector of Boost records would travel through cereal (a vector has no Boost-style
// serialize member), so a batch is a Boost type of its own.
struct BoostBatch {
  std::vector<BoostRecord> records;
  template <class A>
  void serialize(A& ar, unsigned /*version*/) {
    ar & records;
  }
  bool operator==(const BoostBatch&) const = default;
};
static_assert(cohort::format_of<BoostRecord> == cohort::MessageFormat::boost);
static_assert(cohort::format_of<BoostBatch> == cohort::MessageFormat::boost);

BoostRecord sample_record() {
  return BoostRecord{7, "seven", {1, 2, 3}, {{"a", 1}, {"bb", 2}}, {"x", "", "yz"}};
}

TEST(Serialization, BoostPayloadsDecodeAsBinaryOarchiveWroteThem) {
  Bytes bytes;
  encode(sample_record(), bytes);
  EXPECT_EQ(decoded<BoostRecord>(bytes), sample_record());
  BoostBatch many{std::vector<BoostRecord>(5, sample_record())};
  many.records[3].name = std::string(5000, 'n');
  encode(many, bytes);
  EXPECT_EQ(decoded<BoostBatch>(bytes), many);
  encode(BoostRecord{}, bytes);  // empty string and containers
  EXPECT_EQ(decoded<BoostRecord>(bytes), BoostRecord{});
}

// Overwrites the 8-byte size at `offset` of an encoded payload with `claimed`.
Bytes with_size(Bytes payload, std::size_t offset, std::uint64_t claimed) {
  std::memcpy(payload.data() + offset, &claimed, sizeof claimed);
  return payload;
}

void expect_corrupt(const Bytes& payload, const char* what) {
  BoostRecord out;
  try {
    decode(std::span<const std::byte>(payload), out);
    ADD_FAILURE() << "decoded a payload claiming " << what;
  } catch (const std::length_error& e) {  // not std::bad_alloc: nothing was allocated for it
    EXPECT_NE(std::string(e.what()).find("corrupt payload"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

// A corrupt length never reaches an allocation: Boost's own binary_iarchive would resize the
// string or vector to the claimed size first (2^40 bytes: std::bad_alloc, or a real allocation
// of whatever fits).
TEST(Serialization, CorruptBoostSizesFailBeforeAllocating) {
  Bytes good;
  encode(sample_record(), good);
  // The name's 8-byte length comes right before "seven", the values' 8-byte count right after
  // (Boost writes some class information first).
  const std::string text(reinterpret_cast<const char*>(good.data()), good.size());
  const std::size_t name_at = text.find("seven");
  ASSERT_NE(name_at, std::string::npos);
  ASSERT_GE(name_at, 8u);
  const std::size_t kNameLength = name_at - 8;
  const std::size_t kValuesCount = name_at + 5;
  ASSERT_GT(good.size(), kValuesCount + 8);
  EXPECT_EQ(decoded<BoostRecord>(with_size(good, kNameLength, 5)), sample_record());  // offsets right
  expect_corrupt(with_size(good, kNameLength, std::uint64_t{1} << 40), "a string of");
  expect_corrupt(with_size(good, kValuesCount, std::uint64_t{1} << 40), "a collection of");
  // Just one more than the bytes left: still refused.
  expect_corrupt(with_size(good, kNameLength, good.size() - kNameLength - 8 + 1), "a string of");
}

}  // namespace
