// The web page's files (master/http/static/*), compiled into the binary by
// embed_static.cmake so det-master serves them with no install step.
#ifndef DET_MASTER_HTTP_STATIC_ASSETS_H_
#define DET_MASTER_HTTP_STATIC_ASSETS_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace det::http {

struct StaticAsset {
  const char* name;  // file name under static/, e.g. "app.js"
  const unsigned char* data;
  size_t size;

  absl::string_view body() const {
    return {reinterpret_cast<const char*>(data), size};
  }
};

// The asset served at `path` ("/" is index.html), or nullptr.
const StaticAsset* FindStaticAsset(absl::string_view path);

// Content-Type by file extension (UTF-8 for text).
std::string ContentTypeFor(absl::string_view name);

// A strong ETag for the asset's bytes, stable for one build.
std::string ETagFor(const StaticAsset& asset);

}  // namespace det::http

#endif  // DET_MASTER_HTTP_STATIC_ASSETS_H_
