// Platform layer: futex wait/wake on 32-bit words in process-shared memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace cohort::platform {

/// Sleeps while `*word == expected`, at most `timeout` (negative: no limit). Returns on a wake,
/// a value change, a signal or the timeout; callers re-check their condition. noexcept: the only
/// errors (EAGAIN, EINTR, ETIMEDOUT) all mean "re-check".
void futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) noexcept;

/// Wakes up to `count` sleepers on `word` (shared, not FUTEX_PRIVATE: the word may be in a
/// segment mapped by other processes). Returns the number woken.
int futex_wake(const std::atomic<std::uint32_t>& word, int count) noexcept;

}  // namespace cohort::platform
