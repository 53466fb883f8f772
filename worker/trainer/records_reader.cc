#include "worker/trainer/records_reader.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace det::records {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

// nlohmann's message without its "[json.exception...] parse error at line
// 1, column N: " prefix (its line and column are those of our one line).
std::string ParseReason(const std::string& what) {
  size_t at = what.find("column ");
  if (at != std::string::npos) at = what.find(": ", at);
  return at == std::string::npos ? what : what.substr(at + 2);
}

const char* TypeName(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

}  // namespace

std::string Record::Where() const { return absl::StrCat(file, ":", line); }

LineReader::LineReader(std::string path, std::FILE* f, int64_t max_line_bytes)
    : path_(std::move(path)),
      file_(f),
      max_line_bytes_(max_line_bytes),
      buffer_(static_cast<size_t>(max_line_bytes) + kReadChunk + 1, '\0') {}

LineReader::~LineReader() { std::fclose(file_); }

absl::StatusOr<std::unique_ptr<LineReader>> LineReader::Open(
    const std::string& path, int64_t max_line_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    std::string message = absl::StrCat("cannot open records file ", path, ": ",
                                       std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::UnavailableError(message);
  }
  return std::unique_ptr<LineReader>(new LineReader(path, f, max_line_bytes));
}

absl::StatusOr<bool> LineReader::Next(std::string_view* line) {
  while (true) {
    const char* start = buffer_.data() + begin_;
    if (const void* nl = std::memchr(start, '\n', end_ - begin_)) {
      const size_t len = static_cast<const char*>(nl) - start;
      if (static_cast<int64_t>(len) > max_line_bytes_) break;  // too long
      *line = std::string_view(start, len);
      ++line_number_;
      line_offset_ = buffer_offset_ + static_cast<int64_t>(begin_);
      begin_ += len + 1;
      return true;
    }
    if (static_cast<int64_t>(end_ - begin_) > max_line_bytes_) break;
    if (eof_) {
      if (begin_ == end_) return false;
      *line = std::string_view(start, end_ - begin_);  // no final newline
      ++line_number_;
      line_offset_ = buffer_offset_ + static_cast<int64_t>(begin_);
      begin_ = end_;
      return true;
    }
    // Keep the unfinished line at the front and read after it; the buffer
    // holds the cap plus one chunk, so this never grows.
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      buffer_offset_ += static_cast<int64_t>(begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    const size_t room = std::min(kReadChunk, buffer_.size() - end_);
    const size_t got = std::fread(buffer_.data() + end_, 1, room, file_);
    end_ += got;
    if (got < room) {
      if (std::ferror(file_)) {
        return absl::DataLossError(
            absl::StrCat("reading records file ", path_, " at byte ",
                         buffer_offset_ + static_cast<int64_t>(end_), ": ",
                         std::strerror(errno)));
      }
      eof_ = true;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path_, ":", line_number_ + 1, ": line starting at byte offset ",
      buffer_offset_ + static_cast<int64_t>(begin_), " is longer than ",
      max_line_bytes_,
      " bytes; a records file holds one JSON object per line (is this "
      "JSON lines? a JSON array or a pretty-printed file is not)"));
}

absl::StatusOr<int64_t> ForEachRecord(
    const std::string& path,
    const std::function<absl::Status(const Record&)>& fn,
    int64_t max_line_bytes) {
  absl::StatusOr<std::unique_ptr<LineReader>> reader =
      LineReader::Open(path, max_line_bytes);
  if (!reader.ok()) return reader.status();
  int64_t count = 0;
  std::string_view line;
  Record record;
  record.file = path;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&line);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    record.line = (*reader)->line_number();
    record.offset = (*reader)->line_offset();
    const std::string where = record.Where();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line.begin(), line.end());
    } catch (const nlohmann::json::parse_error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ":", std::max<size_t>(1, e.byte),
                       ": not valid JSON: ", ParseReason(e.what())));
    }
    if (!j.is_object()) {
      const size_t column = line.find_first_not_of(" \t") + 1;
      return absl::InvalidArgumentError(
          absl::StrCat(where, ":", column,
                       ": expected a JSON object ({...}), "
                       "found ",
                       TypeName(j)));
    }
    record.fields.clear();
    for (auto it = j.begin(); it != j.end(); ++it) {
      const nlohmann::json& v = it.value();
      Value value;
      switch (v.type()) {
        case nlohmann::json::value_t::null:
          break;
        case nlohmann::json::value_t::boolean:
          value = v.get<bool>();
          break;
        case nlohmann::json::value_t::number_integer:
          value = v.get<int64_t>();
          break;
        case nlohmann::json::value_t::number_unsigned:
          // nlohmann reads every non-negative integer as unsigned.
          if (v.get<uint64_t>() <= uint64_t{INT64_MAX}) {
            value = static_cast<int64_t>(v.get<uint64_t>());
          } else {
            value = v.get<double>();
          }
          break;
        case nlohmann::json::value_t::number_float:
          value = v.get<double>();
          break;
        case nlohmann::json::value_t::string:
          value = v.get<std::string>();
          break;
        default:
          return absl::InvalidArgumentError(absl::StrCat(
              where, ": field '", it.key(), "' is ", TypeName(v),
              "; a record's fields must be numbers, strings, booleans or "
              "null (flatten nested values into fields of their own)"));
      }
      record.fields.emplace(it.key(), std::move(value));
    }
    ++count;
    if (absl::Status s = fn(record); !s.ok()) return s;
  }
  return count;
}

}  // namespace det::records
