#include "worker/trial_api/trial_context.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "worker/trial_api/remote_trial_context.h"
#include "worker/trial_api/standalone_trial_context.h"

namespace det {
namespace {

// Written by the signal handler, read by anyone: must be lock-free.
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void OnStopSignal(int) {
  g_stop_requested.store(true, std::memory_order_relaxed);
}

void InstallStopHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa = {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    // Restart interrupted system calls: the trial finishes its batch and
    // then looks at the flag; it should not see spurious EINTR failures.
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
  });
}

// Reads an integer environment variable; `fallback` when unset or empty.
absl::StatusOr<int> IntFromEnv(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  int out = 0;
  if (!absl::SimpleAtoi(v, &out) || out < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment variable ", name, "='", v,
                     "' is not a non-negative integer"));
  }
  return out;
}

}  // namespace

bool StopRequestedBySignal() {
  return g_stop_requested.load(std::memory_order_relaxed);
}

void ExitNow(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

absl::StatusOr<std::unique_ptr<TrialContext>> TrialContext::FromEnvironment(
    const v1::TrialSpec& standalone_spec) {
  InstallStopHandler();

  absl::StatusOr<int> rank = IntFromEnv("DET_RANK", 0);
  if (!rank.ok()) return rank.status();

  const char* addr = std::getenv("DET_TRIAL_API_ADDR");
  if (addr == nullptr || *addr == '\0') {
    absl::StatusOr<int> world =
        IntFromEnv("DET_WORLD_SIZE", std::max(1, standalone_spec.world_size()));
    if (!world.ok()) return world.status();
    return std::unique_ptr<TrialContext>(
        std::make_unique<StandaloneTrialContext>(standalone_spec, *rank,
                                                 std::max(1, *world)));
  }

  const char* token = std::getenv("DET_TRIAL_TOKEN");
  if (token == nullptr || *token == '\0') {
    return absl::InvalidArgumentError(
        "DET_TRIAL_API_ADDR is set but DET_TRIAL_TOKEN is not: a trial "
        "started by a worker gets both; unset DET_TRIAL_API_ADDR to run "
        "standalone");
  }
  // 0: take the world size from the spec once it is fetched.
  absl::StatusOr<int> world = IntFromEnv("DET_WORLD_SIZE", 0);
  if (!world.ok()) return world.status();
  return RemoteTrialContext::Connect(addr, token, *rank, *world);
}

StartingCheckpoint StartingCheckpointOf(const v1::TrialSpec& spec) {
  StartingCheckpoint out;
  if (!spec.restore_uuid().empty()) {
    out.uuid = spec.restore_uuid();
    out.path = absl::StrCat(spec.checkpoint_dir(), "/", out.uuid);
    for (const v1::Checkpoint& c : spec.restore_candidates()) {
      if (c.uuid() == out.uuid) out.steps_completed = c.steps_completed();
    }
  } else if (spec.has_warm_start() && !spec.warm_start().uuid().empty()) {
    out.uuid = spec.warm_start().uuid();
    out.path = absl::StrCat(spec.warm_start_dir(), "/", out.uuid);
    out.warm_start = true;
  }
  return out;
}

}  // namespace det
