// Small readers and writers the searchers' snapshots share: the snapshots
// are JSON written directly and read back with det::ParseJson.
#ifndef DET_MASTER_SEARCHER_SNAPSHOT_JSON_H_
#define DET_MASTER_SEARCHER_SNAPSHOT_JSON_H_

#include <cstdint>
#include <string>

#include "common/value.h"

namespace det::searcher {

// A double as a quoted "%.17g" string, exact: det::Value's JSON output keeps
// six significant digits, and restored rankings must be exactly the same.
std::string ExactDouble(double d);

// Reads what ExactDouble wrote. False when `v` is not such a string.
bool ReadExactDouble(const Value& v, double* out);

// Reads an integral number (at most 9e15 in magnitude). False otherwise.
bool ReadInt(const Value& v, int64_t* out);

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_SNAPSHOT_JSON_H_
