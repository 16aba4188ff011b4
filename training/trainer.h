// Fine-tuning a BERT classifier on a prepared dataset: AdamW with decoupled weight decay,
// linear warmup and decay, clipping, accumulation, periodic dev evaluation with the best model
// kept, early stopping, and checkpoints that resume bit-identically on CPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/prepared_dataset.h"
#include "distributed/process_group.h"
#include "model/checkpoint.h"
#include "training/adamw.h"
#include "training/batching.h"

namespace recmodel::training {

namespace fs = std::filesystem;

struct TrainConfig {
  int epochs = 3;
  size_t batch_size = 32;
  double lr = 5e-5;
  double warmup_ratio = 0.1;
  double weight_decay = 0.01;
  int grad_accum = 1;
  double max_grad_norm = 1.0;       // 0: no clipping
  int64_t eval_every = 0;           // optimizer steps between dev evaluations; 0: once per epoch
  int patience = 0;                 // evaluations without improvement before stopping; 0: never stop early
  std::string metric;               // dev metric that picks the best model; "" = accuracy or mae
  uint64_t seed = 42;
  int64_t checkpoint_every = 0;     // optimizer steps between checkpoints; 0: at every evaluation
  int64_t log_every = 10;           // optimizer steps between train_log.jsonl records
  int64_t stop_after = 0;           // stop (as if interrupted) after this many optimizer steps; 0: off
  std::string device = "auto";      // auto, cpu, cuda, cuda:N
  std::string precision = "fp32";   // fp32, bf16, fp16 (CUDA only)
};

// Returns the learning-rate factor of optimizer step `step` (0-based) of `total` with `warmup`
// warmup steps: Hugging Face's get_linear_schedule_with_warmup.
double linear_schedule(int64_t step, int64_t warmup, int64_t total);

// Copies the tensors of a checkpoint's model.safetensors into `module`'s parameters (same names
// and shapes, else DataError).
void load_parameters(torch::nn::Module& module, const fs::path& file);

// Saves and restores torch's CPU generator (a checkpoint resumes with the same dropout masks).
void save_cpu_generator(const fs::path& file);
void load_cpu_generator(const fs::path& file);

// Throws UsageError naming every setting of `now` that a checkpoint's `then` had otherwise.
void require_same_settings(const nlohmann::json& now, const nlohmann::json& then);

// The dropout seed of optimizer step `step` on rank `rank` of a job: drawn afresh at every step,
// so a restarted or resumed job continues with exactly the masks it would have drawn.
uint64_t step_seed(uint64_t seed, int64_t step, int rank);

// Returns the metric the trainer selects by when none is given: accuracy, or mae for regression.
std::string default_metric(data::Task task);

// What happened after one optimizer step, for progress display.
struct StepReport {
  int64_t step = 0;
  int64_t total_steps = 0;
  double loss = 0;
  double lr = 0;
  double samples_per_second = 0;
};

// Everything the trainer reports back at the end.
struct TrainResult {
  int64_t steps = 0;
  int64_t total_steps = 0;
  int epochs_completed = 0;
  bool stopped_early = false;
  bool resumed = false;
  int64_t resumed_from_step = 0;
  double seconds = 0;
  double samples_per_second = 0;
  double tokens_per_second = 0;
  double final_loss = 0;
  std::string metric;
  std::optional<double> best_value;
  int64_t best_step = 0;
  nlohmann::json best_metrics;  // every dev metric at the best evaluation
  std::string device;
};

// Thrown (exit 130) when SIGINT/SIGTERM or --stop-after ended training; a checkpoint was saved.
struct Interrupted : Error {
  Interrupted(const std::string& m) : Error(ExitCode::interrupted, m) {}
};

class Trainer {
 public:
  // `work_dir` holds checkpoint/, best/ and train_log.jsonl while training runs. `label_map`
  // (data::Fit, from model::open_for_training) maps the dataset's class ids to the head's;
  // empty: they are the same. With a process `group` (world size > 1) each step's global batch
  // is sharded across the ranks and the gradients summed; rank 0 alone writes work_dir, which the
  // other ranks read when resuming (one machine, or a shared filesystem). Without one: one process.
  Trainer(TrainConfig config, model::LoadedModel& loaded, const data::PreparedDataset& dataset, fs::path work_dir,
          std::function<void(const std::string&)> warn, std::vector<int32_t> label_map = {},
          distributed::ProcessGroup* group = nullptr);

  // Trains from scratch, or continues from work_dir/checkpoint when `resume` is set. Returns the
  // model with the best dev weights loaded (the last weights when there is no dev split).
  TrainResult run(bool resume, const std::function<void(const StepReport&)>& on_step);

  // Returns the dev metrics of the current weights: every metric by name plus "loss". With a
  // process group each rank evaluates a share of the batches and the predictions are summed, so
  // every rank gets the single-process metrics.
  nlohmann::json evaluate_dev();

  // What every rank of a job must agree on: the data, the settings and the starting model.
  nlohmann::json fingerprint() const;

  // Set from a signal handler: finish the current step, save a checkpoint, stop.
  static std::atomic<bool>& stop_requested();

 private:
  struct State;
  void save_checkpoint(const State& state);
  void load_checkpoint(State& state);
  void save_best(const State& state);
  void load_best();
  // Rewrites a classification batch's dataset class ids as the head's (label_map_).
  void map_labels(Batch& batch, const data::DatasetSplit& split, const std::vector<size_t>& indices) const;
  void append_log(const nlohmann::json& record);
  void truncate_log(int64_t after_step);
  // The settings a checkpoint must match to be resumed (not the world size: resuming 2 -> 1 works).
  nlohmann::json settings() const;
  // This rank's share of a global batch: a contiguous slice, empty when the batch is smaller than the world.
  std::vector<size_t> shard(const std::vector<size_t>& batch) const;
  // Sums the gradients over the ranks; `has_gradient` (summed already) says which parameters had
  // one on some rank: the others stay without, as in a single process.
  void sum_gradients(const std::vector<torch::Tensor>& parameters, const torch::Tensor& has_gradient);
  bool writes_files() const { return group_ == nullptr || group_->rank() == 0; }
  // Throws UsageError when --metric is not defined for this task (r2 of a classifier, ...).
  void check_metric_applies() const;
  // Returns where the last checkpoint is, for error messages.
  std::string last_good_checkpoint() const;

  TrainConfig config_;
  model::LoadedModel& loaded_;
  const data::PreparedDataset& dataset_;
  fs::path work_dir_;
  std::function<void(const std::string&)> warn_;
  std::vector<int32_t> label_map_;
  data::DatasetSplit train_;
  std::optional<data::DatasetSplit> dev_;
  torch::Device device_;
  std::unique_ptr<AdamW> optimizer_;
  distributed::ProcessGroup* group_;
};

}  // namespace recmodel::training
