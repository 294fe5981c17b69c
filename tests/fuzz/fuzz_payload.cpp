// Fuzz: serialized payloads (cereal and Boost.Serialization) decoded as the receive path decodes
// them: the RecvTarget's finish() (cohort/p2p.hpp, detail::decode). Engine::complete_recv turns
// any std::exception from it into cohort::DeserializeError; anything else (a crash, a sanitizer
// report, an allocation beyond the input's size) is a finding.
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include "cohort/p2p.hpp"
#include "tests/fuzz/fuzz_target.hpp"

namespace {

struct CerealRecord {
  int id = 0;
  std::string name;
  std::vector<double> values;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, name, values);
  }
};

struct BoostRecord {
  int id = 0;
  std::string name;
  std::vector<int> values;
  std::map<std::string, int> index;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & id & name & values & index;
  }
};

struct BoostBatch {
  std::vector<BoostRecord> records;
  std::vector<std::string> names;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & records & names;
  }
};

// The bytes of data a decoded Boost value holds (what must have come from the payload).
[[maybe_unused]] std::size_t content_bytes(const BoostRecord& r) {
  std::size_t n = sizeof r.id + r.name.size() + r.values.size() * sizeof(int);
  for (const auto& [key, value] : r.index) n += key.size() + sizeof value;
  return n;
}
[[maybe_unused]] std::size_t content_bytes(const BoostBatch& b) {
  std::size_t n = 0;
  for (const BoostRecord& r : b.records) n += content_bytes(r);
  for (const std::string& name : b.names) n += name.size();
  return n;
}

template <class T>
void decode(std::span<const std::byte> payload) {
  T out{};
  cohort::detail::RecvTarget t = cohort::detail::recv_target(out);
  COHORT_FUZZ_CHECK(t.finish != nullptr);
  try {
    t.finish(t.ctx, payload);
  } catch (const std::exception&) {
    return;  // complete_recv: DeserializeError
  }
  // Decoded without error: nothing can have come from beyond the payload.
  if constexpr (cohort::format_of<T> == cohort::MessageFormat::boost) {
    // Boost writes class information (a tracking flag, versions) that a corrupt payload may
    // carry differently from what encoding writes again, so count the data instead.
    COHORT_FUZZ_CHECK(content_bytes(out) <= payload.size());
  } else {
    // cereal: encoding it again gives at most the payload's bytes (a map drops duplicate keys).
    std::vector<std::byte> again;
    cohort::detail::encode(out, again);
    COHORT_FUZZ_CHECK(again.size() <= payload.size());
  }
}

}  // namespace

#if !defined(COHORT_LIBFUZZER) || !defined(COHORT_FUZZ_ONLY_BOOST)
// cereal payloads (cohort's CerealReader: every count is checked against the bytes left).
COHORT_FUZZ_TARGET(payload) {
  cohort::fuzz::Input in(data, size);
  const auto which = in.take<std::uint8_t>();
  std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(in.rest()), in.left());
  switch (which % 3) {
    case 0: decode<std::vector<std::string>>(payload); break;
    case 1: decode<std::map<int, std::vector<double>>>(payload); break;
    default: decode<CerealRecord>(payload); break;
  }
  return 0;
}
#endif

#if !defined(COHORT_LIBFUZZER) || defined(COHORT_FUZZ_ONLY_BOOST)
// Boost.Serialization payloads (cohort's CheckedBinaryIArchive: every string length and
// collection count is checked against the bytes left before Boost allocates for it). The
// std::vector<BoostRecord> case travels through cereal (a vector has no Boost-style serialize),
// so a Boost batch type covers nested Boost collections.
COHORT_FUZZ_TARGET(payload_boost) {
  cohort::fuzz::Input in(data, size);
  const auto which = in.take<std::uint8_t>();
  std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(in.rest()), in.left());
  switch (which % 3) {
    case 0: decode<BoostRecord>(payload); break;
    case 1: decode<BoostBatch>(payload); break;
    default: decode<std::vector<BoostRecord>>(payload); break;
  }
  return 0;
}
#endif
