// Must NOT compile: a type that is neither raw, cereal nor Boost serializable.
#include <cohort/cohort.hpp>

struct Opaque {
  std::string s;  // not trivially copyable, no serialize
};

int main() {
  cohort::Environment env;
  env.world().send(Opaque{}, 0, cohort::Tag{0});
}
