// fault_test's master-kill tests run on PostgreSQL in this binary (the
// server of the CTest fixture 'postgres').
#include <string>
#include <vector>

namespace det::testing {
std::vector<std::string> FaultTestStores() { return {"postgres"}; }
}  // namespace det::testing
