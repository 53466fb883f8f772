#include "common/rpc/states.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace det {

std::string StateName(v1::State s) {
  const std::string& name = v1::State_Name(s);
  if (name.empty()) return absl::StrCat("STATE_", static_cast<int>(s));
  return std::string(absl::StripPrefix(name, "STATE_"));
}

bool IsTerminal(v1::State s) {
  return s == v1::STATE_COMPLETED || s == v1::STATE_CANCELED ||
         s == v1::STATE_ERROR;
}

}  // namespace det
