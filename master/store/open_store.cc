#include "master/store/open_store.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "master/store/postgres_store.h"
#include "master/store/sqlite_store.h"

namespace det::store {

bool IsPostgresUrl(absl::string_view db) {
  return absl::StartsWith(db, "postgresql://") ||
         absl::StartsWith(db, "postgres://");
}

std::string RedactDb(absl::string_view db) {
  if (!IsPostgresUrl(db)) return std::string(db);
  std::string out(db);
  // scheme://user:password@host...: the password runs from the first ':'
  // after the scheme to the '@' that ends the user part.
  size_t start = out.find("://") + 3;
  size_t at = out.find('@', start);
  size_t slash = out.find('/', start);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    size_t colon = out.find(':', start);
    if (colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // ...?password=...&
  size_t pw = out.find("password=");
  if (pw != std::string::npos) {
    size_t from = pw + 9;
    size_t end = out.find('&', from);
    out.replace(from, (end == std::string::npos ? out.size() : end) - from,
                "***");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(
    const std::string& db, std::function<void(absl::Duration)> observer) {
  if (IsPostgresUrl(db)) {
    absl::StatusOr<std::unique_ptr<PostgresStore>> pg = PostgresStore::Open(db);
    if (!pg.ok()) return pg.status();
    (*pg)->SetWriteObserver(std::move(observer));
    return std::unique_ptr<Store>(std::move(*pg));
  }
  absl::StatusOr<std::unique_ptr<SqliteStore>> sq = SqliteStore::Open(db);
  if (!sq.ok()) return sq.status();
  (*sq)->SetWriteObserver(std::move(observer));
  return std::unique_ptr<Store>(std::move(*sq));
}

}  // namespace det::store
