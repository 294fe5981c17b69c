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
  // Decoded without error: encoding it again gives at most the payload's bytes (a map drops
  // duplicate keys; nothing can come from beyond the payload).
  std::vector<std::byte> again;
  cohort::detail::encode(out, again);
  COHORT_FUZZ_CHECK(again.size() <= payload.size());
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
// Boost.Serialization payloads. Known limitation (README, "Fuzzing"): Boost's binary_iarchive
// sizes a string or collection from the payload before reading it, so a corrupt length makes the
// receiver allocate that much (std::bad_alloc, reported as DeserializeError, when it cannot);
// the fuzzer reports such an allocation at once, so tests/fuzz/run.sh does not run this target in
// CI; its seeds are replayed in every build.
COHORT_FUZZ_TARGET(payload_boost) {
  cohort::fuzz::Input in(data, size);
  const auto which = in.take<std::uint8_t>();
  std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(in.rest()), in.left());
  if (which % 2 == 0) decode<BoostRecord>(payload);
  else decode<std::vector<BoostRecord>>(payload);
  return 0;
}
#endif
