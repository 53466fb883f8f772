// libFuzzer entry point for the experiment config parser and overrides.
//   cmake -S . -B build-fuzz -DDET_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
//         -DDET_BUILD_TRAINER=OFF
//   make -C build-fuzz config_fuzzer
//   mkdir -p /tmp/corpus && cp configs/cifar10/*.yaml /tmp/corpus
//   build-fuzz/fuzz/config_fuzzer -max_len=4096 /tmp/corpus
// Any crash, sanitizer report, or malformed error list is a bug.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  det::ParseLimits limits;
  limits.max_nodes = 20000;
  std::vector<det::ConfigError> errors;
  auto cfg = det::ParseExperimentConfig(text, &errors, limits);
  if (cfg.ok() != errors.empty()) std::abort();
  for (const det::ConfigError& e : errors) {
    if (e.message.empty() || e.line < 0 || e.column < 0) std::abort();
  }
  auto overridden =
      det::ApplyConfigOverrides(text, {"searcher.max_trials=2"}, limits);
  if (overridden.ok()) {
    det::ParseExperimentConfig(*overridden, nullptr, limits).IgnoreError();
  }
  return 0;
}
