// Transport layer: copies straight between two ranks' address spaces (the platform's
// cross-memory attach), for the layers above, which use no platform call themselves.
#pragma once

#include "runtime/platform/cross_memory.hpp"

namespace cohort::transport {

using platform::CrossMemory;
using platform::allow_sibling_access;
using platform::describe;
using platform::read_from;
using platform::write_to;

}  // namespace cohort::transport
