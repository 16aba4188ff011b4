// Masked-LM pretraining of BERT on unlabelled text (recmodel pretrain): the corpus streamed and
// packed (training/mlm_data.h), dynamic masking each epoch, AdamW with linear warmup and decay,
// clipping, checkpoints that resume bit-identically on CPU, and held-out masked-token accuracy
// and perplexity.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "model/bert.h"
#include "training/adamw.h"
#include "training/mlm_data.h"

namespace recmodel::training {

namespace fs = std::filesystem;

struct PretrainConfig {
  double mlm_probability = 0.15;
  bool whole_word_masking = true;
  int epochs = 1;
  int64_t max_steps = 0;  // > 0: exactly this many optimizer steps (epochs repeat as needed)
  size_t batch_size = 32;
  double lr = 1e-4;
  double warmup_ratio = 0.1;
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;
  uint64_t seed = 42;
  int64_t checkpoint_every = 200;  // optimizer steps between checkpoints
  int64_t eval_every = 0;          // optimizer steps between held-out evaluations; 0: each epoch
  int64_t log_every = 10;          // optimizer steps between pretrain_log.jsonl records
  int64_t stop_after = 0;          // stop (as if interrupted) after this many steps; 0: off
  size_t shuffle_blocks = 4096;    // the shuffle buffer: the memory of the data order
  std::string device = "auto";
  std::string precision = "fp32";  // fp32, bf16, fp16 (CUDA only)
};

struct PretrainStep {
  int64_t step = 0, total_steps = 0;
  double loss = 0, lr = 0, tokens_per_second = 0;
};

struct PretrainResult {
  CorpusCounts corpus;
  int64_t steps = 0, total_steps = 0;
  int epochs_completed = 0;
  bool resumed = false;
  int64_t resumed_from_step = 0;
  double seconds = 0, tokens_per_second = 0, final_loss = 0;
  nlohmann::json held_out;  // masked_accuracy, perplexity, loss, masked_tokens; null without held-out lines
  std::string device;
};

class Pretrainer {
 public:
  // `work_dir` holds checkpoint/ and pretrain_log.jsonl while training runs.
  Pretrainer(PretrainConfig config, model::BertForMaskedLM& model, const MlmCorpus& corpus, fs::path work_dir);

  // Trains from the start, or continues from work_dir/checkpoint with `resume`. Throws
  // Interrupted (exit 130, a checkpoint saved) on SIGINT/SIGTERM (Trainer::stop_requested).
  PretrainResult run(bool resume, const std::function<void(const PretrainStep&)>& on_step);

  // Masked-token accuracy, loss and perplexity on the held-out lines, masked the same way every
  // time (a fixed seed), so evaluations compare; null when there are none.
  nlohmann::json evaluate();

 private:
  struct State;
  nlohmann::json settings() const;
  void save_checkpoint(const State& state);
  void load_checkpoint(State& state);
  void append_log(const nlohmann::json& record);
  double train_step(const std::vector<TokenBlock>& blocks, uint64_t mask_seed, int64_t step, int64_t total,
                    int64_t warmup, int64_t& tokens);

  PretrainConfig config_;
  model::BertForMaskedLM& model_;
  const MlmCorpus& corpus_;
  fs::path work_dir_;
  torch::Device device_;
  MaskingOptions masking_;
  std::unique_ptr<AdamW> optimizer_;
};

}  // namespace recmodel::training
