// The shared store suites run on PostgreSQL in this binary (the server of
// the CTest fixture 'postgres'; each test on a schema of its own).
#include "tests/store/store_backend.h"

namespace det::store {

std::vector<BackendParam> TestBackends(bool) {
  return {BackendParam{"postgres", [] { return MakePostgresBackend(); }}};
}

}  // namespace det::store
