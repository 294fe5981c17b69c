// Transport layer: the bulk copy that every payload takes (rings, streams, collective staging,
// the unexpected queue). It lives in the public detail header cohort/detail/copy.hpp, because
// the headers that copy payloads themselves (cereal archives, pool results) need it too; the
// file comment there says why it is not plain memcpy.
#pragma once

#include "cohort/detail/copy.hpp"

namespace cohort::transport {

using detail::copy_bytes;
using detail::kRepMovsbMinBytes;
using detail::memcpy_aliasing_case;

}  // namespace cohort::transport
