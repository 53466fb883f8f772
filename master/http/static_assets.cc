#include "master/http/static_assets.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace det::http {

// Defined in the generated static_assets_data.cc.
extern const StaticAsset kStaticAssets[];
extern const size_t kNumStaticAssets;

const StaticAsset* FindStaticAsset(absl::string_view path) {
  if (path == "/") path = "/index.html";
  if (!absl::ConsumePrefix(&path, "/")) return nullptr;
  for (size_t i = 0; i < kNumStaticAssets; ++i) {
    if (path == kStaticAssets[i].name) return &kStaticAssets[i];
  }
  return nullptr;
}

std::string ContentTypeFor(absl::string_view name) {
  struct Type {
    const char* ext;
    const char* type;
  };
  static constexpr Type kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const Type& t : kTypes) {
    if (absl::EndsWith(name, t.ext)) return t.type;
  }
  return "application/octet-stream";
}

std::string ETagFor(const StaticAsset& asset) {
  // FNV-1a: enough to tell two builds' files apart, no crypto needed.
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < asset.size; ++i) {
    h = (h ^ asset.data[i]) * 1099511628211ull;
  }
  return absl::StrFormat("\"%016x\"", h);
}

}  // namespace det::http
