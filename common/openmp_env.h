// The OpenMP wait setting det gives training processes when the environment
// names none: spin ~10 us, then sleep (worker/trainer/main.cc has the
// measurements). The worker sets it for each trial; det-trial run by hand
// sets it for itself (and re-executes, since libgomp reads it when loaded).
#ifndef DET_COMMON_OPENMP_ENV_H_
#define DET_COMMON_OPENMP_ENV_H_

#include <cstdlib>
#include <utility>
#include <vector>

namespace det {

// The variables to set, given the current environment: none when
// OMP_WAIT_POLICY is already set (the user's choice stands), and
// GOMP_SPINCOUNT only when it is unset.
inline std::vector<std::pair<const char*, const char*>> OpenMpWaitDefaults() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return {};
  std::vector<std::pair<const char*, const char*>> vars = {
      {"OMP_WAIT_POLICY", "PASSIVE"}};
  if (std::getenv("GOMP_SPINCOUNT") == nullptr) {
    vars.push_back({"GOMP_SPINCOUNT", "1000"});
  }
  return vars;
}

}  // namespace det

#endif  // DET_COMMON_OPENMP_ENV_H_
