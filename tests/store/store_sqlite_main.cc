// The shared store suites run on SQLite in this binary.
#include "tests/store/store_backend.h"

namespace det::store {

std::vector<BackendParam> TestBackends(bool persistent) {
  return {BackendParam{"sqlite", [persistent] {
                         return MakeSqliteBackend(/*memory=*/!persistent);
                       }}};
}

}  // namespace det::store
