// train --autotune: a hyper-parameter search on the dev split, as fastText's -autotune-duration
// does for its models, with successive halving so bad trials stop early: every trial trains a
// ninth of its steps, the best third goes on to a third, the best of those trains to the end.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/prepared_dataset.h"
#include "model/model_open.h"
#include "training/trainer.h"

namespace recmodel::training {

namespace fs = std::filesystem;

// The settings one trial trains with.
struct TrialSettings {
  double lr = 5e-5;
  int epochs = 3;
  size_t batch_size = 32;
  double warmup_ratio = 0.1;
  double weight_decay = 0.01;
  double dropout = 0.1;
  std::string preset;  // from scratch: the architecture; "" keeps the model's
  nlohmann::json to_json() const;
};

struct TrialOutcome {
  int id = 0;
  TrialSettings settings;
  int rungs = 0;          // rungs trained: 1, 2 or 3 (3 = to the end)
  int64_t steps = 0;      // optimizer steps trained
  int64_t total_steps = 0;
  double seconds = 0;
  std::optional<double> metric;  // dev metric after its last rung
  std::optional<double> dev_loss;  // at that evaluation: breaks ties of the metric (lower first)
  bool finished = false;
  std::string error;  // a trial that failed (diverged): why; it is dropped from the search
  nlohmann::json to_json() const;
};

struct AutotuneOptions {
  double budget_seconds = 0;  // > 0: start no new trial or rung once spent (the final trial finishes)
  int trials = 0;             // > 0: exactly this many trials (deterministic with a seed on CPU)
  bool search_preset = false;  // from scratch: tiny, mini and small are tried too
  uint64_t seed = 42;
};

struct AutotuneResult {
  std::vector<TrialOutcome> trials;
  size_t best = 0;          // index into trials
  TrainResult best_result;  // the finished best trial's training
  double seconds = 0;
  nlohmann::json to_json(const std::string& metric) const;
};

// Opens a fresh copy of the model for a trial (the callback applies the trial's preset).
using OpenTrialModel = std::function<model::OpenedModel(const TrialSettings&)>;

// Returns trial `index` of a search seeded by `seed`: trial 0 is `base` as given, the others are
// drawn from the search space (learning rate log-uniform, the rest from short lists).
TrialSettings draw_trial(const TrialSettings& base, uint64_t seed, int index, bool search_preset);

// Sets every dropout of `opened` (hidden, attention, classifier) to `p`.
void set_dropout(model::OpenedModel& opened, double p);

class Autotuner {
 public:
  Autotuner(TrainConfig base, TrialSettings base_settings, AutotuneOptions options,
            const data::PreparedDataset& dataset, fs::path work_dir, OpenTrialModel open,
            std::function<void(const std::string&)> warn);

  // Runs the search; `on_trial` sees each trial after each of its rungs. Afterwards best_model()
  // holds the best trial's best dev weights.
  AutotuneResult run(const std::function<void(const TrialOutcome&)>& on_trial);
  model::OpenedModel& best_model() { return *best_model_; }

 private:
  TrainConfig base_;
  TrialSettings base_settings_;
  AutotuneOptions options_;
  const data::PreparedDataset& dataset_;
  fs::path work_dir_;
  OpenTrialModel open_;
  std::function<void(const std::string&)> warn_;
  std::unique_ptr<model::OpenedModel> best_model_;
};

}  // namespace recmodel::training
