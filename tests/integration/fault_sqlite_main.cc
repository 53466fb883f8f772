// fault_test's master-kill tests run on SQLite in this binary.
#include <string>
#include <vector>

namespace det::testing {
std::vector<std::string> FaultTestStores() { return {"sqlite"}; }
}  // namespace det::testing
