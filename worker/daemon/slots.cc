#include "worker/daemon/slots.h"

#include <sched.h>
#include <stdio.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace det::worker {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> GpusFromProc() {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> dirs;
  for (fs::directory_iterator it("/proc/driver/nvidia/gpus", ec), end;
       !ec && it != end; it.increment(ec)) {
    dirs.push_back(it->path().string());
  }
  // Directory names are PCI addresses: sorting them gives PCI bus order.
  std::sort(dirs.begin(), dirs.end());
  std::vector<std::string> out;
  for (const std::string& d : dirs) {
    std::string model = ParseNvidiaProcInformation(ReadAll(d + "/information"));
    out.push_back(model.empty() ? "NVIDIA GPU" : model);
  }
  return out;
}

std::vector<std::string> GpusFromNvidiaSmi() {
  // `timeout` bounds a wedged driver; no nvidia-smi gives empty output.
  FILE* p = popen(
      "command -v nvidia-smi >/dev/null 2>&1 && timeout 10 nvidia-smi -L "
      "2>/dev/null",
      "r");
  if (p == nullptr) return {};
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
  pclose(p);
  return ParseNvidiaSmiList(text);
}

}  // namespace

std::string ParseNvidiaProcInformation(const std::string& text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "Model:")) {
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "";
}

std::vector<std::string> ParseNvidiaSmiList(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "GPU ")) continue;
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view name = line.substr(colon + 1);
    size_t uuid = name.find(" (UUID:");
    if (uuid != absl::string_view::npos) name = name.substr(0, uuid);
    out.emplace_back(absl::StripAsciiWhitespace(name));
  }
  return out;
}

std::vector<std::string> DetectGpus() {
  std::vector<std::string> gpus = GpusFromProc();
  if (gpus.empty()) gpus = GpusFromNvidiaSmi();
  return gpus;
}

absl::StatusOr<std::vector<v1::Slot>> MakeSlots(
    int requested, bool cpu_only, const std::vector<std::string>& gpus,
    std::string* note) {
  if (requested < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--slots must be >= 0 (0: automatic), got ", requested));
  }
  std::vector<v1::Slot> slots;
  if (!cpu_only && !gpus.empty() && requested > static_cast<int>(gpus.size())) {
    if (note != nullptr) {
      *note = absl::StrCat("--slots ", requested, " but only ", gpus.size(),
                           " GPU(s) found: offering ", requested,
                           " CPU slots (pass --slots ", gpus.size(),
                           " or less to use the GPUs)");
    }
    cpu_only = true;
  }
  if (!cpu_only && !gpus.empty()) {
    const int n = requested == 0 ? static_cast<int>(gpus.size()) : requested;
    for (int i = 0; i < n; ++i) {
      v1::Slot& s = slots.emplace_back();
      s.set_id(i);
      s.set_type("cuda");
      s.set_device(gpus[i]);
    }
    return slots;
  }
  const int n = requested == 0 ? 1 : requested;
  for (int i = 0; i < n; ++i) {
    v1::Slot& s = slots.emplace_back();
    s.set_id(i);
    s.set_type("cpu");
    s.set_device("cpu");
  }
  return slots;
}

int UsableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    return std::max(1, CPU_COUNT(&set));
  }
  return 1;
}

int ThreadsFor(int held, int total, int cores) {
  if (total <= 0) return 1;
  return std::max(1, cores * std::max(1, held) / total);
}

}  // namespace det::worker
