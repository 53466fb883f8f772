// postgres_cluster_test's store-parameterised tests run on PostgreSQL (the
// server of the CTest fixture 'postgres').
#include <string>
#include <vector>

#include "tests/integration/on_each_store.h"

namespace det::testing {
std::vector<std::string> StoresUnderTest() { return {"postgres"}; }
}  // namespace det::testing
