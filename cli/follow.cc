#include "cli/follow.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/output.h"
#include "cli/table.h"

namespace det::cli {
namespace {

// Failures that a new watch may cure: the master restarting, a connection
// dropped by the network, a stream we let expire.
bool Retryable(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

}  // namespace

Backoff::Backoff(const FollowOptions& options)
    : options_(options), next_(options.initial_backoff) {}

void Backoff::Reset() {
  next_ = options_.initial_backoff;
  failing_since_ = absl::InfinitePast();
}

bool Backoff::Wait(std::ostream& err, const absl::Status& why) {
  const absl::Time now = absl::Now();
  if (failing_since_ == absl::InfinitePast()) failing_since_ = now;
  if (now - failing_since_ > options_.give_up_after) return false;
  err << "det: lost the stream from the master (" << why.message()
      << "); trying again in " << absl::FormatDuration(next_) << std::endl;
  absl::SleepFor(next_);
  next_ = std::min(next_ * 2, options_.max_backoff);
  return true;
}

absl::StatusOr<v1::Experiment> WatchUntilTerminal(
    Client& client, int64_t id, const FollowOptions& options,
    const std::function<void(const v1::Experiment&)>& on_update,
    std::ostream& err) {
  Backoff backoff(options);
  v1::Experiment last;
  bool terminal = false;
  bool ever_received = false;
  bool poll = false;
  auto take = [&](const v1::Experiment& experiment) {
    ever_received = true;
    last = experiment;
    on_update(experiment);
    terminal = IsTerminal(experiment.state());
  };

  while (true) {
    absl::Status status;
    bool received = false;
    if (poll) {
      absl::StatusOr<v1::Experiment> experiment = client.GetExperiment(id);
      status = experiment.status();
      if (experiment.ok()) {
        received = true;
        take(*experiment);
      }
    } else {
      status = client.WatchExperiment(id, options.stream_lifetime,
                                      [&](const v1::Experiment& experiment) {
                                        received = true;
                                        take(experiment);
                                        return !terminal;
                                      });
    }
    if (terminal) return last;

    if (!poll && status.code() == absl::StatusCode::kUnimplemented) {
      // An older master without the stream: ask for the state instead.
      poll = true;
      continue;
    }
    if (received) backoff.Reset();
    if (poll && status.ok()) {
      absl::SleepFor(options.poll_interval);
      continue;
    }
    // A stream that ran its lifetime is simply opened again (the master
    // sends the current state first, so a stream that reached it has
    // received something); so is one the
    // master closed after sending something (it may be shutting down), after
    // a short pause so that a master that keeps doing so is not hammered.
    if (received && status.code() == absl::StatusCode::kDeadlineExceeded) {
      continue;
    }
    if (received && status.ok()) {
      absl::SleepFor(options.initial_backoff);
      continue;
    }
    if (status.ok()) {
      status = absl::UnavailableError(
          "the master ended the watch before the experiment finished");
    }
    // Before anything arrived the failure is the user's to fix (wrong
    // address, unknown id): say so at once instead of retrying.
    if (!ever_received || !Retryable(status.code())) return status;
    if (!backoff.Wait(err, status)) {
      return absl::Status(
          status.code(),
          absl::StrCat("gave up following experiment ", id, " after ",
                       absl::FormatDuration(options.give_up_after),
                       " without the master: ", status.message()));
    }
  }
}

std::string ProgressLine(const v1::Experiment& e) {
  std::string line =
      absl::StrCat("Experiment ", e.id(), " ", StateName(e.state()), "  ",
                   FormatPercent(e.progress()), "  trials: ");
  if (e.trials_queued() > 0)
    absl::StrAppend(&line, e.trials_queued(), " queued, ");
  absl::StrAppend(&line, e.trials_running(), " running, ", e.trials_completed(),
                  " completed, ", e.trials_errored(), " errored");
  const std::string best = BestMetricCell(e);
  if (best != "-") absl::StrAppend(&line, "  best ", e.metric(), " ", best);
  return line;
}

ProgressPrinter::ProgressPrinter(std::ostream& out, bool terminal)
    : out_(out), terminal_(terminal) {}

void ProgressPrinter::Update(const v1::Experiment& experiment) {
  std::string line = ProgressLine(experiment);
  if (line == last_) return;
  if (terminal_) {
    const size_t width = DisplayWidth(line);
    // Blank out what is left of a longer previous line.
    out_ << '\r' << line
         << std::string(last_width_ > width ? last_width_ - width : 0, ' ');
    last_width_ = width;
  } else {
    out_ << line << '\n';
  }
  out_.flush();
  last_ = std::move(line);
}

void ProgressPrinter::Finish() {
  if (terminal_ && last_width_ > 0) out_ << '\n';
  last_width_ = 0;
  out_.flush();
}

void PrintOutcome(std::ostream& out, const v1::Experiment& e) {
  out << "Experiment " << e.id() << " ended " << StateName(e.state());
  if (!e.message().empty()) out << ": " << e.message();
  out << '\n';
  if (e.best_trial_id() == 0 || e.best_validation_metrics().empty()) {
    out << "No trial reported validation metrics.\n";
    return;
  }
  out << "Best trial: " << e.best_trial_id() << " (" << e.metric() << " "
      << BestMetricCell(e) << ")\n"
      << "Best validation metrics:\n";
  PrintMetrics(out, e.best_validation_metrics(), 2);
}

}  // namespace det::cli
