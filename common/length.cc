#include "common/length.h"

#include <algorithm>

namespace det {

const char* UnitName(Unit u) {
  switch (u) {
    case Unit::kBatches:
      return "batches";
    case Unit::kEpochs:
      return "epochs";
    case Unit::kRecords:
      return "records";
  }
  return "batches";
}

int64_t ToBatches(Unit unit, int64_t units, int64_t records_per_epoch,
                  int64_t global_batch_size) {
  if (units <= 0) return 0;
  int64_t bs = std::max<int64_t>(global_batch_size, 1);
  int64_t records = 0;
  switch (unit) {
    case Unit::kBatches:
      return units;
    case Unit::kEpochs:
      records = units * records_per_epoch;
      break;
    case Unit::kRecords:
      records = units;
      break;
  }
  return std::max<int64_t>((records + bs - 1) / bs, 1);
}

int64_t FromBatches(Unit unit, int64_t batches, int64_t records_per_epoch,
                    int64_t global_batch_size) {
  int64_t bs = std::max<int64_t>(global_batch_size, 1);
  switch (unit) {
    case Unit::kBatches:
      return batches;
    case Unit::kEpochs:
      return records_per_epoch > 0 ? batches * bs / records_per_epoch : 0;
    case Unit::kRecords:
      return batches * bs;
  }
  return batches;
}

}  // namespace det
