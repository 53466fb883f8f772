// Picks the store that master.yaml's `db` names.
#ifndef DET_MASTER_STORE_OPEN_STORE_H_
#define DET_MASTER_STORE_OPEN_STORE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "master/store/store.h"

namespace det::store {

// Whether `db` names a PostgreSQL database ("postgresql://..." or
// "postgres://...") rather than a SQLite file.
bool IsPostgresUrl(absl::string_view db);

// `db` with any password in it replaced by "***" (for logs).
std::string RedactDb(absl::string_view db);

// Opens the store `db` names: PostgreSQL for a postgresql:// URL, else a
// SQLite file (path). Sets `write_observer` on it (may be null).
absl::StatusOr<std::unique_ptr<Store>> OpenStore(
    const std::string& db,
    std::function<void(absl::Duration)> write_observer = nullptr);

}  // namespace det::store

#endif  // DET_MASTER_STORE_OPEN_STORE_H_
