#include "common/trainer_hparams.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config_checker.h"

namespace det::trainer {
namespace {

absl::Status Invalid(const std::string& name, const Value& v,
                     const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrCat("hyperparameter '", name,
                                                 "': expected ", expected,
                                                 ", found ", v.ToJson()));
}

// Integers may arrive as integral doubles (protobuf numbers are doubles and
// a "double" search space can produce 64.0).
absl::Status ReadInt(const std::string& name, const Value& v, int64_t lo,
                     int64_t hi, int64_t* out) {
  std::string expected = absl::StrCat("an integer in [", lo, ", ", hi, "]");
  int64_t x;
  if (v.is_int()) {
    x = v.as_int();
  } else if (v.is_double() && std::isfinite(v.as_number()) &&
             v.as_number() == std::floor(v.as_number()) &&
             std::fabs(v.as_number()) < 9e15) {
    x = static_cast<int64_t>(v.as_number());
  } else {
    return Invalid(name, v, expected);
  }
  if (x < lo || x > hi) return Invalid(name, v, expected);
  *out = x;
  return absl::OkStatus();
}

// `lo_open`/`hi_open` make the interval open at that end.
absl::Status ReadDouble(const std::string& name, const Value& v, double lo,
                        bool lo_open, double hi, bool hi_open, double* out) {
  std::string expected = absl::StrCat("a number in ", lo_open ? "(" : "[", lo,
                                      ", ", hi, hi_open ? ")" : "]");
  if (!v.is_number() || !std::isfinite(v.as_number())) {
    return Invalid(name, v, expected);
  }
  double x = v.as_number();
  if (x < lo || (lo_open && x == lo) || x > hi || (hi_open && x == hi)) {
    return Invalid(name, v, expected);
  }
  *out = x;
  return absl::OkStatus();
}

absl::Status ReadBool(const std::string& name, const Value& v, bool* out) {
  if (!v.is_bool()) return Invalid(name, v, "true or false");
  *out = v.as_bool();
  return absl::OkStatus();
}

template <typename E>
absl::Status ReadEnum(const std::string& name, const Value& v,
                      const std::map<std::string, E>& choices, E* out) {
  std::vector<std::string> names;
  for (const auto& [k, e] : choices) names.push_back(absl::StrCat("'", k, "'"));
  std::string expected = absl::StrCat("one of ", absl::StrJoin(names, ", "));
  if (!v.is_string()) return Invalid(name, v, expected);
  auto it = choices.find(v.as_string());
  if (it == choices.end()) return Invalid(name, v, expected);
  *out = it->second;
  return absl::OkStatus();
}

using Reader =
    std::function<absl::Status(const std::string&, const Value&, HParams*)>;

// Names only one task reads; every other name is shared.
const std::vector<std::string>& CnnOnlyNames() {
  static const auto* names = new std::vector<std::string>{
      "conv_layers", "kernel_size", "n_filters1", "n_filters2"};
  return *names;
}
const std::vector<std::string>& RecordsOnlyNames() {
  static const auto* names =
      new std::vector<std::string>{"activation", "hidden_layers"};
  return *names;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool KnownTo(Task task, const std::string& name) {
  return !Contains(task == Task::kCifar10 ? RecordsOnlyNames() : CnnOnlyNames(),
                   name);
}

const std::map<std::string, Reader>& Readers() {
  static const auto* readers = new std::map<std::string, Reader>{
      {"learning_rate",
       [](auto& n, auto& v, HParams* h) {
         return ReadDouble(n, v, 0, true, 10, false, &h->learning_rate);
       }},
      {"global_batch_size",
       [](auto& n, auto& v, HParams* h) {
         return ReadInt(n, v, 1, 65536, &h->global_batch_size);
       }},
      {"n_filters1",
       [](auto& n, auto& v, HParams* h) {
         return ReadInt(n, v, 1, 1024, &h->n_filters1);
       }},
      {"n_filters2",
       [](auto& n, auto& v, HParams* h) {
         return ReadInt(n, v, 1, 1024, &h->n_filters2);
       }},
      {"kernel_size",
       [](auto& n, auto& v, HParams* h) {
         absl::Status s = ReadInt(n, v, 1, 9, &h->kernel_size);
         // Odd sizes keep "same" padding exact, so each block halves the
         // image and the flattened size is what the model expects.
         if (s.ok() && h->kernel_size % 2 == 0) {
           return Invalid(n, v, "an odd integer in [1, 9]");
         }
         return s;
       }},
      {"hidden_units",
       [](auto& n, auto& v, HParams* h) {
         return ReadInt(n, v, 1, 16384, &h->hidden_units);
       }},
      {"dropout",
       [](auto& n, auto& v, HParams* h) {
         return ReadDouble(n, v, 0, false, 1, true, &h->dropout);
       }},
      {"conv_layers",
       [](auto& n, auto& v, HParams* h) {
         // Each block halves 32x32 images: five blocks leave 1x1.
         return ReadInt(n, v, 1, 5, &h->conv_layers);
       }},
      {"hidden_layers",
       [](auto& n, auto& v, HParams* h) {
         return ReadInt(n, v, 0, 16, &h->hidden_layers);
       }},
      {"activation",
       [](auto& n, auto& v, HParams* h) {
         return ReadEnum<Activation>(n, v,
                                     {{"relu", Activation::kRelu},
                                      {"tanh", Activation::kTanh},
                                      {"gelu", Activation::kGelu}},
                                     &h->activation);
       }},
      {"batch_norm", [](auto& n, auto& v,
                        HParams* h) { return ReadBool(n, v, &h->batch_norm); }},
      {"optimizer",
       [](auto& n, auto& v, HParams* h) {
         return ReadEnum<OptimizerKind>(
             n, v,
             {{"sgd", OptimizerKind::kSgd}, {"adam", OptimizerKind::kAdam}},
             &h->optimizer);
       }},
      {"momentum",
       [](auto& n, auto& v, HParams* h) {
         return ReadDouble(n, v, 0, false, 1, true, &h->momentum);
       }},
      {"nesterov", [](auto& n, auto& v,
                      HParams* h) { return ReadBool(n, v, &h->nesterov); }},
      {"weight_decay",
       [](auto& n, auto& v, HParams* h) {
         return ReadDouble(n, v, 0, false, 1, false, &h->weight_decay);
       }},
      {"lr_schedule",
       [](auto& n, auto& v, HParams* h) {
         return ReadEnum<LrSchedule>(n, v,
                                     {{"constant", LrSchedule::kConstant},
                                      {"cosine", LrSchedule::kCosine},
                                      {"step", LrSchedule::kStep}},
                                     &h->lr_schedule);
       }},
      {"lr_step_size",
       [](auto& n, auto& v, HParams* h) {
         return ReadInt(n, v, 0, int64_t{1} << 40, &h->lr_step_size);
       }},
      {"lr_gamma",
       [](auto& n, auto& v, HParams* h) {
         return ReadDouble(n, v, 0, true, 1, false, &h->lr_gamma);
       }},
  };
  return *readers;
}

}  // namespace

Task TaskForData(const ValueMap& data) {
  auto it = data.find("format");
  if (it != data.end() && it->second.is_string() &&
      it->second.as_string() == "jsonl") {
    return Task::kRecords;
  }
  return Task::kCifar10;
}

std::vector<std::string> BuiltinValidationMetrics(const ValueMap& data) {
  auto task = data.find("task");
  if (TaskForData(data) == Task::kRecords && task != data.end() &&
      task->second.is_string() && task->second.as_string() == "regression") {
    return {"validation_loss", "validation_mae", "validation_rmse"};
  }
  return {"validation_accuracy", "validation_error", "validation_loss"};
}

const std::vector<std::string>& KnownHParamNames(Task task) {
  auto names_of = [](Task t) {
    auto* v = new std::vector<std::string>;
    for (const auto& [k, r] : Readers()) {
      if (KnownTo(t, k)) v->push_back(k);
    }
    return v;
  };
  static const auto* cnn = names_of(Task::kCifar10);
  static const auto* records = names_of(Task::kRecords);
  return task == Task::kCifar10 ? *cnn : *records;
}

absl::Status ReadHParam(const std::string& name, const Value& value, HParams* h,
                        Task task) {
  auto it = Readers().find(name);
  if (it == Readers().end() || !KnownTo(task, name)) {
    const std::vector<std::string>& known = KnownHParamNames(task);
    std::string message = absl::StrCat("unknown hyperparameter '", name, "'");
    if (it != Readers().end()) {
      absl::StrAppend(&message, task == Task::kRecords
                                    ? " for JSON records (data.format: jsonl; "
                                      "it belongs to the CIFAR-10 CNN)."
                                    : " for CIFAR-10 (it belongs to the JSON "
                                      "records MLP, data.format: jsonl).");
    } else if (std::string closest = config_internal::ClosestName(name, known);
               !closest.empty()) {
      absl::StrAppend(&message, "; did you mean '", closest, "'?");
    } else {
      absl::StrAppend(&message, ".");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        message, " The built-in trainer knows ", absl::StrJoin(known, ", "),
        " (names starting with '_' are ignored)"));
  }
  return it->second(name, value, h);
}

absl::Status CheckBatchSplit(int64_t global_batch_size, int64_t slots) {
  if (slots > 0 && global_batch_size % slots == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("hyperparameter 'global_batch_size': ", global_batch_size,
                   " does not split evenly over ", slots, " slots"));
}

absl::StatusOr<HParams> ParseHParams(const ValueMap& hparams, Task task) {
  HParams h;
  for (const auto& [name, value] : hparams) {
    if (!name.empty() && name[0] == '_') continue;
    absl::Status s = ReadHParam(name, value, &h, task);
    if (!s.ok()) return s;
  }
  if (h.nesterov && (h.optimizer != OptimizerKind::kSgd || h.momentum == 0)) {
    return absl::InvalidArgumentError(
        "hyperparameter 'nesterov': true needs optimizer 'sgd' with "
        "momentum > 0");
  }
  return h;
}

}  // namespace det::trainer
