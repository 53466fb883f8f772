// Experiment administration: changing an experiment's name, description,
// labels, priority and max_slots; archiving; its config as it stands;
// forking; killing one trial. Owns the record fields these change and how
// a (re)loaded master reads them back (ApplyRecordToConfig); the trial
// kill's exit is carried out by trial_lifecycle.cc (kill_requested).
#include "master/core/experiment_admin.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/master.h"
#include "yaml-cpp/yaml.h"

namespace det::master {
namespace {

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ApplyLabelChanges(
    const std::vector<std::string>& labels, const std::vector<std::string>& add,
    const std::vector<std::string>& remove) {
  for (const auto* list : {&add, &remove}) {
    for (const std::string& l : *list) {
      if (absl::StripAsciiWhitespace(l).empty()) {
        return absl::InvalidArgumentError("labels: a label may not be empty");
      }
    }
  }
  std::vector<std::string> out;
  for (const std::string& l : labels) {
    if (!Contains(out, l) && !Contains(remove, l)) out.push_back(l);
  }
  for (const std::string& l : add) {
    if (!Contains(out, l) && !Contains(remove, l)) out.push_back(l);
  }
  return out;
}

absl::Status ApplyPatch(const v1::PatchExperimentRequest& patch,
                        const ExperimentConfig& config, v1::Experiment* x) {
  if (patch.has_name() && absl::StripAsciiWhitespace(patch.name()).empty()) {
    return absl::InvalidArgumentError(
        "name: an experiment's name may not be "
        "empty");
  }
  if (patch.has_priority() && (patch.priority() < 1 || patch.priority() > 99)) {
    return absl::InvalidArgumentError(
        absl::StrCat("resources.priority: must be from 1 to 99 (lower runs "
                     "first), got ",
                     patch.priority()));
  }
  if (patch.has_max_slots()) {
    if (patch.max_slots() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("resources.max_slots: must be positive (or none), got ",
                       patch.max_slots()));
    }
    if (patch.max_slots() > 0 &&
        patch.max_slots() < config.resources.slots_per_trial) {
      return absl::InvalidArgumentError(absl::StrCat(
          "resources.max_slots: ", patch.max_slots(),
          " is less than resources.slots_per_trial (",
          config.resources.slots_per_trial, "): no trial could ever run"));
    }
  }
  std::vector<std::string> current(x->labels().begin(), x->labels().end());
  DET_ASSIGN_OR_RETURN(
      std::vector<std::string> labels,
      ApplyLabelChanges(
          current, {patch.add_labels().begin(), patch.add_labels().end()},
          {patch.remove_labels().begin(), patch.remove_labels().end()}));
  if (patch.has_name()) x->set_name(patch.name());
  if (patch.has_description()) x->set_description(patch.description());
  if (patch.has_priority()) x->set_priority(patch.priority());
  if (patch.has_max_slots()) x->set_max_slots(patch.max_slots());
  x->clear_labels();
  for (std::string& l : labels) x->add_labels(std::move(l));
  return absl::OkStatus();
}

void ApplyRecordToConfig(const v1::Experiment& x, ExperimentConfig* config) {
  config->name = x.name();
  config->description = x.description();
  config->labels.assign(x.labels().begin(), x.labels().end());
  // Records are created with the config's priority, so 0 means a record
  // written before priorities were stored: the config's holds.
  if (x.priority() >= 1 && x.priority() <= 99) {
    config->resources.priority = x.priority();
  }
  if (x.has_max_slots()) {
    if (x.max_slots() > 0) {
      config->resources.max_slots = x.max_slots();
    } else {
      config->resources.max_slots.reset();
    }
  }
}

absl::StatusOr<ExperimentConfig> ParseRecordConfig(const v1::Experiment& x) {
  auto cfg = ParseStoredExperimentConfig(x.config_yaml());
  if (!cfg.ok()) {
    return absl::DataLossError(absl::StrCat(
        "experiment ", x.id(),
        ": stored config no longer parses: ", cfg.status().message()));
  }
  return cfg;
}

absl::StatusOr<std::string> EffectiveConfigYaml(const v1::Experiment& x) {
  auto parsed = ParseStoredExperimentConfig(x.config_yaml());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("experiment ", x.id(),
                     ": its stored config no longer "
                     "parses: ",
                     parsed.status().message()));
  }
  ExperimentConfig changed = *parsed;
  ApplyRecordToConfig(x, &changed);
  const ResourcesConfig& was = parsed->resources;
  const ResourcesConfig& now = changed.resources;
  const bool name = changed.name != parsed->name;
  const bool description = changed.description != parsed->description;
  const bool labels = changed.labels != parsed->labels;
  const bool priority = now.priority != was.priority;
  const bool max_slots = now.max_slots != was.max_slots;
  if (!name && !description && !labels && !priority && !max_slots) {
    return x.config_yaml();
  }
  try {
    YAML::Node root = YAML::Load(x.config_yaml());
    if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
    if (name) root["name"] = changed.name;
    if (description) root["description"] = changed.description;
    if (labels) {
      YAML::Node list(YAML::NodeType::Sequence);
      for (const std::string& l : changed.labels) list.push_back(l);
      root["labels"] = list;
    }
    if (priority || max_slots) {
      YAML::Node resources = root["resources"];
      if (!resources.IsMap()) {
        root["resources"] = YAML::Node(YAML::NodeType::Map);
        resources.reset(root["resources"]);
      }
      if (priority) resources["priority"] = now.priority;
      if (max_slots) {
        if (now.max_slots) {
          resources["max_slots"] = *now.max_slots;
        } else {
          resources.remove("max_slots");
        }
      }
    }
    YAML::Emitter out;
    out << root;
    return absl::StrCat(out.c_str(), "\n");
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("experiment ", x.id(), ": its stored config: ", e.what()));
  }
}

absl::StatusOr<v1::Experiment> Master::EditExperiment(int64_t id,
                                                      const EditFn& edit) {
  absl::MutexLock l(&mu_);
  if (ExperimentState* e = FindExperiment(id)) {
    v1::Experiment x = Describe(*e);
    // Refusals first: a failure inside the transaction is the store's.
    DET_RETURN_IF_ERROR(edit(e->config, &x));
    DET_RETURN_IF_ERROR(Transact([&]() -> absl::Status {
      e->rec.experiment = x;
      ApplyRecordToConfig(x, &e->config);
      return SaveExperiment(e);
    }));
    // Queued trials wait again under the new priority and max_slots, in
    // their old order.
    for (auto& [tid, t] : e->trials) {
      if (!scheduler_.IsQueued(tid)) continue;
      const absl::Time queued_at = t.queued_at;
      scheduler_.Dequeue(tid);
      Enqueue(e, &t);
      t.queued_at = queued_at;
    }
    Touch(e);
    v1::Experiment out = Describe(*e);
    ScheduleLocked();
    return out;
  }
  // Ended and out of memory: the store's record is the only copy.
  auto rec = store_->GetExperiment(id);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) {
      return absl::NotFoundError(absl::StrCat("experiment ", id, " not found"));
    }
    return rec.status();
  }
  v1::Experiment x = std::move(rec->experiment);
  DET_ASSIGN_OR_RETURN(ExperimentConfig cfg, ParseRecordConfig(x));
  DET_RETURN_IF_ERROR(edit(cfg, &x));
  DET_RETURN_IF_ERROR(Transact([&]() { return store_->UpdateExperiment(x); }));
  return x;
}

absl::StatusOr<v1::Experiment> Master::PatchExperiment(
    const v1::PatchExperimentRequest& patch) {
  const int64_t id = patch.experiment_id();
  return EditExperiment(
      id,
      [&](const ExperimentConfig& config, v1::Experiment* x) -> absl::Status {
        if (IsTerminal(x->state()) &&
            (patch.has_priority() || patch.has_max_slots())) {
          return absl::FailedPreconditionError(absl::StrCat(
              "experiment ", id, " is ", StateName(x->state()),
              ": its priority and max_slots no longer matter; only its "
              "name, description and labels can change"));
        }
        return ApplyPatch(patch, config, x);
      });
}

absl::StatusOr<v1::Experiment> Master::SetExperimentArchived(int64_t id,
                                                             bool archived) {
  return EditExperiment(
      id, [&](const ExperimentConfig&, v1::Experiment* x) -> absl::Status {
        if (archived && !IsTerminal(x->state())) {
          return absl::FailedPreconditionError(absl::StrCat(
              "cannot archive experiment ", id, ": it is ",
              StateName(x->state()),
              "; only an ended experiment can be archived (cancel or kill "
              "it first)"));
        }
        if (x->archived() == archived) {
          return absl::FailedPreconditionError(
              absl::StrCat("experiment ", id, " is ",
                           archived ? "already archived" : "not archived"));
        }
        x->set_archived(archived);
        return absl::OkStatus();
      });
}

absl::StatusOr<std::string> Master::GetExperimentConfig(int64_t id) {
  DET_ASSIGN_OR_RETURN(v1::Experiment x, GetExperiment(id));
  return EffectiveConfigYaml(x);
}

absl::StatusOr<v1::Experiment> Master::ForkExperiment(
    int64_t parent_id, const std::string& yaml, bool activate,
    std::vector<std::string>* warnings) {
  std::string context;
  bool found = false;
  {
    absl::MutexLock l(&mu_);
    if (ExperimentState* e = FindExperiment(parent_id)) {
      context = e->rec.context;
      found = true;
    }
  }
  if (!found) {
    auto rec = store_->GetExperiment(parent_id);
    if (!rec.ok()) {
      if (absl::IsNotFound(rec.status())) {
        return absl::NotFoundError(
            absl::StrCat("experiment ", parent_id, " not found"));
      }
      return rec.status();
    }
    context = std::move(rec->context);
  }
  DET_ASSIGN_OR_RETURN(v1::Experiment x,
                       CreateExperiment(yaml, context, activate,
                                        /*validate_only=*/false, warnings));
  absl::MutexLock l(&mu_);
  ExperimentState* e = FindExperiment(x.id());
  if (e == nullptr) return x;  // ended already; its parent goes unnoted
  absl::Status noted = Transact([&]() -> absl::Status {
    e->rec.experiment.set_parent_id(parent_id);
    return SaveExperiment(e);
  });
  if (!noted.ok()) {
    return absl::Status(
        noted.code(),
        absl::StrCat("experiment ", x.id(), " was created from experiment ",
                     parent_id,
                     ", but noting its parent failed: ", noted.message()));
  }
  Touch(e);
  return Describe(*e);
}

absl::StatusOr<v1::Trial> Master::KillTrial(int64_t trial_id) {
  {
    absl::MutexLock l(&mu_);
    auto found = FindLiveTrial(trial_id);
    if (found.ok()) {
      auto [e, t] = *found;
      v1::Trial& pt = t->rec.trial;
      if (IsTerminal(pt.state())) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot kill trial ", trial_id, ": it is ",
                         StateName(pt.state()), " (it has ended)"));
      }
      const v1::State es = e->rec.experiment.state();
      const bool stopping =
          es == v1::STATE_STOPPING_CANCELED || es == v1::STATE_STOPPING_KILLED;
      DET_RETURN_IF_ERROR(Transact([&]() -> absl::Status {
        pt.set_kill_requested(true);
        if (t->running) {
          // OnExit / OnTrialLost end it CANCELED when the process is gone.
          StopTrialProcess(t, /*kill=*/true);
          return SaveTrial(t);
        }
        scheduler_.Dequeue(trial_id);
        SetTrialState(e, t, v1::STATE_CANCELED);
        pt.set_exit_reason(v1::EXIT_REASON_KILLED);
        pt.set_end_time_us(NowUs());
        pt.set_message("killed by the user (det trial kill)");
        DET_RETURN_IF_ERROR(SaveTrial(t));
        if (stopping) return MaybeFinish(e);
        return FeedAndProcess(
            e, JournalEvent::Exited(t->rec.request_id,
                                    searcher::ExitedReason::kUserCanceled));
      }));
      v1::Trial out = pt;
      Touch(e);
      ScheduleLocked();
      return out;
    }
  }
  auto stored = store_->GetTrial(trial_id);
  if (!stored.ok()) {
    if (absl::IsNotFound(stored.status())) {
      return absl::NotFoundError(
          absl::StrCat("trial ", trial_id, " not found"));
    }
    return stored.status();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cannot kill trial ", trial_id, ": it is ",
                   StateName(stored->trial.state()), " (it has ended)"));
}

}  // namespace det::master
