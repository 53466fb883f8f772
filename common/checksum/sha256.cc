#include "common/checksum/sha256.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace det {
namespace {

struct CtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string Hex(const unsigned char* md, unsigned int len) {
  std::string out;
  for (unsigned int i = 0; i < len; ++i)
    absl::StrAppendFormat(&out, "%02x", md[i]);
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

absl::StatusOr<std::string> Sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), in.gcount());
  }
  if (in.bad())
    return absl::DataLossError(absl::StrCat("error reading ", path));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  return Hex(md, len);
}

absl::Status VerifyFiles(const std::string& dir,
                         const std::map<std::string, std::string>& expected) {
  for (const auto& [name, digest] : expected) {
    std::string path = absl::StrCat(dir, "/", name);
    absl::StatusOr<std::string> got = Sha256OfFile(path);
    if (!got.ok()) return got.status();
    if (*got != digest) {
      return absl::DataLossError(absl::StrCat(
          path, " is corrupt: its SHA-256 is ", *got, ", expected ", digest));
    }
  }
  return absl::OkStatus();
}

}  // namespace det
