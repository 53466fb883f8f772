// Reading JSON-lines files (one JSON object per line) with bounded memory.
//
// Lines are cut from a fixed buffer: a line longer than the cap (1 MiB by
// default) fails as soon as the cap is passed, naming the file, line and
// byte offset, so a 10 GB file of one line costs one megabyte and a moment,
// never an unbounded allocation. Each line is parsed by nlohmann::json; a
// syntax error names file, line and column ("FILE:LINE:COLUMN: ...").
// Blank lines are skipped. Torch-free.
#ifndef DET_WORKER_TRAINER_RECORDS_READER_H_
#define DET_WORKER_TRAINER_RECORDS_READER_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/value.h"

namespace det::records {

inline constexpr int64_t kDefaultMaxLineBytes = int64_t{1} << 20;

// Cuts a file into lines (without their '\n').
class LineReader {
 public:
  // NotFound / PermissionDenied (with the file name) when it cannot open.
  static absl::StatusOr<std::unique_ptr<LineReader>> Open(
      const std::string& path, int64_t max_line_bytes = kDefaultMaxLineBytes);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Sets `line` to the next line (valid until the next call) and returns
  // true, or false at the end of the file. InvalidArgument when the line
  // is longer than the cap; DataLoss on a read error.
  absl::StatusOr<bool> Next(std::string_view* line);

  // Of the line Next returned last: its 1-based number and the byte offset
  // of its first character in the file.
  int64_t line_number() const { return line_number_; }
  int64_t line_offset() const { return line_offset_; }

 private:
  LineReader(std::string path, std::FILE* f, int64_t max_line_bytes);

  std::string path_;
  std::FILE* file_;
  int64_t max_line_bytes_;
  std::string buffer_;
  size_t begin_ = 0, end_ = 0;  // unread bytes are buffer_[begin_, end_)
  int64_t buffer_offset_ = 0;   // file offset of buffer_[0]
  bool eof_ = false;
  int64_t line_number_ = 0, line_offset_ = 0;
};

// One record: a JSON object's top-level fields. Numbers, strings, booleans
// and nulls only (nested objects and lists are refused).
struct Record {
  std::string file;
  int64_t line = 0;    // 1-based
  int64_t offset = 0;  // byte offset of the line in the file
  ValueMap fields;
  // "FILE:LINE" for messages about the record.
  std::string Where() const;
};

// Calls `fn` with every record of `path`, in order, and returns how many
// there were; stops at the first error (a line that is not a JSON object,
// a nested value, a line too long, or an error `fn` returns).
absl::StatusOr<int64_t> ForEachRecord(
    const std::string& path,
    const std::function<absl::Status(const Record&)>& fn,
    int64_t max_line_bytes = kDefaultMaxLineBytes);

}  // namespace det::records

#endif  // DET_WORKER_TRAINER_RECORDS_READER_H_
