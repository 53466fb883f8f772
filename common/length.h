// Training lengths, as Determined writes them: {batches: N}, {epochs: N} or
// {records: N}.
#ifndef DET_COMMON_LENGTH_H_
#define DET_COMMON_LENGTH_H_

#include <cstdint>
#include <string>

namespace det {

enum class Unit { kBatches, kEpochs, kRecords };

// "batches", "epochs", "records".
const char* UnitName(Unit u);

struct Length {
  Unit unit = Unit::kBatches;
  int64_t value = 0;
};

// Converts `units` of `unit` into batches for a trial with the given global
// batch size: epochs via records_per_epoch; records rounded up to whole
// batches. Always at least 1 for a positive input.
int64_t ToBatches(Unit unit, int64_t units, int64_t records_per_epoch,
                  int64_t global_batch_size);

// The inverse: how many whole units `batches` batches amount to (floor).
int64_t FromBatches(Unit unit, int64_t batches, int64_t records_per_epoch,
                    int64_t global_batch_size);

}  // namespace det

#endif  // DET_COMMON_LENGTH_H_
