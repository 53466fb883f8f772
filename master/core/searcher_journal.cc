#include "master/core/searcher_journal.h"

#include <cmath>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/value.h"

namespace det::master {
namespace {

// JSON has no NaN or infinities (det::Value writes them as null): those are
// kept as strings.
Value JournalNumber(double d) {
  if (std::isfinite(d)) return Value(d);
  return Value(std::isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
}

// A null (a NaN or infinity journaled before they were kept as strings)
// reads as NaN, which every searcher ranks last.
double JournalNumberValue(const Value& v) {
  if (v.is_number()) return v.as_number();
  double d = 0;
  if (v.is_string() && absl::SimpleAtod(v.as_string(), &d)) return d;
  return std::numeric_limits<double>::quiet_NaN();
}

const char* KindName(JournalEvent::Kind k) {
  switch (k) {
    case JournalEvent::Kind::kInit:
      return "init";
    case JournalEvent::Kind::kCreated:
      return "created";
    case JournalEvent::Kind::kValidation:
      return "val";
    case JournalEvent::Kind::kClosed:
      return "closed";
    case JournalEvent::Kind::kExited:
      return "exited";
  }
  return "?";
}

absl::Status Unreadable(const std::string& text, const char* why) {
  return absl::DataLossError(
      absl::StrCat("unreadable searcher journal entry (", why, "): ", text));
}

}  // namespace

JournalEvent JournalEvent::Created(searcher::RequestId r) {
  JournalEvent e;
  e.kind = Kind::kCreated;
  e.request_id = r;
  return e;
}

JournalEvent JournalEvent::Validation(searcher::RequestId r, double metric,
                                      int64_t length) {
  JournalEvent e;
  e.kind = Kind::kValidation;
  e.request_id = r;
  e.metric = metric;
  e.length = length;
  return e;
}

JournalEvent JournalEvent::Closed(searcher::RequestId r) {
  JournalEvent e;
  e.kind = Kind::kClosed;
  e.request_id = r;
  return e;
}

JournalEvent JournalEvent::Exited(searcher::RequestId r,
                                  searcher::ExitedReason why) {
  JournalEvent e;
  e.kind = Kind::kExited;
  e.request_id = r;
  e.exited = why;
  return e;
}

std::string EncodeJournalEvent(const JournalEvent& ev) {
  ValueMap m{{"e", Value(KindName(ev.kind))}, {"r", Value(ev.request_id)}};
  if (ev.kind == JournalEvent::Kind::kValidation) {
    m["m"] = JournalNumber(ev.metric);
    m["l"] = Value(ev.length);
  }
  if (ev.kind == JournalEvent::Kind::kExited) {
    m["why"] = Value(static_cast<int64_t>(ev.exited));
  }
  return Value(std::move(m)).ToJson();
}

absl::StatusOr<JournalEvent> DecodeJournalEvent(const std::string& text) {
  auto parsed = ParseJson(text);
  if (!parsed.ok() || !parsed->is_map()) return Unreadable(text, "not JSON");
  const Value& v = *parsed;
  if (!v["e"].is_string()) return Unreadable(text, "no kind");
  const std::string& kind = v["e"].as_string();
  JournalEvent ev;
  ev.request_id =
      v["r"].is_number() ? static_cast<int64_t>(v["r"].as_number()) : 0;
  if (kind == "init") {
    ev.kind = JournalEvent::Kind::kInit;
  } else if (kind == "created") {
    ev.kind = JournalEvent::Kind::kCreated;
  } else if (kind == "closed") {
    ev.kind = JournalEvent::Kind::kClosed;
  } else if (kind == "val") {
    if (!v["l"].is_number()) return Unreadable(text, "validation length");
    ev.kind = JournalEvent::Kind::kValidation;
    ev.metric = JournalNumberValue(v["m"]);
    ev.length = static_cast<int64_t>(v["l"].as_number());
  } else if (kind == "exited") {
    if (!v["why"].is_number()) return Unreadable(text, "exit reason");
    int why = static_cast<int>(v["why"].as_number());
    if (why < static_cast<int>(searcher::ExitedReason::kErrored) ||
        why > static_cast<int>(searcher::ExitedReason::kUserCanceled)) {
      return Unreadable(text, "unknown exit reason");
    }
    ev.kind = JournalEvent::Kind::kExited;
    ev.exited = static_cast<searcher::ExitedReason>(why);
  } else {
    return Unreadable(text, "unknown kind");
  }
  return ev;
}

searcher::Operations ApplyJournalEvent(searcher::SearchMethod* s,
                                       const JournalEvent& ev) {
  switch (ev.kind) {
    case JournalEvent::Kind::kInit:
      return s->InitialOperations();
    case JournalEvent::Kind::kCreated:
      return s->TrialCreated(ev.request_id);
    case JournalEvent::Kind::kValidation:
      return s->ValidationCompleted(ev.request_id, ev.metric, ev.length);
    case JournalEvent::Kind::kClosed:
      return s->TrialClosed(ev.request_id);
    case JournalEvent::Kind::kExited:
      return s->TrialExitedEarly(ev.request_id, ev.exited);
  }
  return {};
}

std::string EncodeSearcherSnapshot(const SearcherSnapshot& s) {
  ValueMap m{{"done", Value(s.done)},
             {"failed", Value(s.failed)},
             {"searcher", Value(s.searcher)}};
  if (s.has_seed) m["seed"] = Value(static_cast<int64_t>(s.seed));
  if (!s.warm_start_uuid.empty()) m["warm_start"] = Value(s.warm_start_uuid);
  return Value(std::move(m)).ToJson();
}

absl::StatusOr<SearcherSnapshot> DecodeSearcherSnapshot(
    const std::string& text) {
  auto parsed = ParseJson(text);
  if (!parsed.ok() || !(*parsed)["searcher"].is_string()) {
    return absl::DataLossError("stored searcher snapshot is unreadable");
  }
  const Value& v = *parsed;
  SearcherSnapshot s;
  s.done = v["done"] == Value(true);
  s.failed = v["failed"] == Value(true);
  if (v["seed"].is_int()) {
    s.has_seed = true;
    s.seed = static_cast<uint64_t>(v["seed"].as_int());
  }
  if (v["warm_start"].is_string()) {
    s.warm_start_uuid = v["warm_start"].as_string();
  }
  s.searcher = v["searcher"].as_string();
  return s;
}

}  // namespace det::master
