// The integration binaries' store-parameterised tests run on SQLite.
#include <string>
#include <vector>

#include "tests/integration/on_each_store.h"

namespace det::testing {
std::vector<std::string> StoresUnderTest() { return {"sqlite"}; }
}  // namespace det::testing
