#include "training/pretrainer.h"

#include <chrono>
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/files.h"
#include "common/json.h"
#include "model/predictor.h"
#include "model/safetensors.h"
#include "training/autocast.h"
#include "training/trainer.h"

namespace recmodel::training {

namespace {

constexpr int kCheckpointFormatVersion = 1;
constexpr uint64_t kHeldOutMaskSeed = 0x6D61736B6564ULL;  // the held-out masks never change

using Clock = std::chrono::steady_clock;

// One masked batch as tensors: inputs padded to the longest block, and the flat positions
// (row * length + column) whose tokens are predicted, with their targets.
struct MaskedBatch {
  torch::Tensor input_ids, token_type_ids, attention_mask, positions, targets;
  int64_t tokens = 0;
};

MaskedBatch make_masked_batch(const std::vector<TokenBlock>& blocks, const MaskingOptions& masking, uint64_t seed,
                              int32_t pad_id, const torch::Device& device) {
  size_t length = 0;
  for (const TokenBlock& block : blocks) length = std::max(length, block.ids.size());
  const int64_t rows = static_cast<int64_t>(blocks.size()), columns = static_cast<int64_t>(length);
  torch::Tensor ids = torch::full({rows, columns}, pad_id, torch::kLong);
  torch::Tensor mask = torch::zeros({rows, columns}, torch::kLong);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  std::vector<int64_t> positions, targets;
  std::vector<int32_t> inputs, labels;
  MaskedBatch batch;
  for (int64_t r = 0; r < rows; ++r) {
    // One generator per block, from the batch's seed: the masks do not depend on thread timing.
    SplitMix64 rng(seed ^ (static_cast<uint64_t>(r + 1) * 0xA24BAED4963EE407ULL));
    mask_block(blocks[static_cast<size_t>(r)], masking, rng, inputs, labels);
    for (size_t c = 0; c < inputs.size(); ++c) {
      ids_a[r][static_cast<int64_t>(c)] = inputs[c];
      mask_a[r][static_cast<int64_t>(c)] = 1;
      if (labels[c] >= 0) {
        positions.push_back(r * columns + static_cast<int64_t>(c));
        targets.push_back(labels[c]);
      }
    }
    batch.tokens += static_cast<int64_t>(inputs.size());
  }
  batch.input_ids = ids.to(device);
  batch.token_type_ids = torch::zeros({rows, columns}, torch::TensorOptions().dtype(torch::kLong).device(device));
  batch.attention_mask = mask.to(device);
  batch.positions = torch::tensor(positions, torch::kLong).to(device);
  batch.targets = torch::tensor(targets, torch::kLong).to(device);
  return batch;
}

model::NamedTensors parameters_of(torch::nn::Module& module) {
  model::NamedTensors tensors;
  for (const auto& item : module.named_parameters()) tensors.emplace_back(item.key(), item.value());
  return tensors;
}

uint64_t batch_mask_seed(uint64_t seed, int64_t epoch, int64_t batch) {
  SplitMix64 mix(seed ^ (static_cast<uint64_t>(epoch + 1) * 0xBF58476D1CE4E5B9ULL) ^
                 (static_cast<uint64_t>(batch + 1) * 0x94D049BB133111EBULL));
  return mix.next();
}

}  // namespace

struct Pretrainer::State {
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t next_batch = 0;  // batches of `epoch` already trained
  double last_loss = 0;
  nlohmann::json held_out = nullptr;
};

Pretrainer::Pretrainer(PretrainConfig config, model::BertForMaskedLM& model, const MlmCorpus& corpus,
                       fs::path work_dir)
    : config_(std::move(config)),
      model_(model),
      corpus_(corpus),
      work_dir_(std::move(work_dir)),
      device_(model::parse_device(config_.device)) {
  if (!(config_.mlm_probability > 0 && config_.mlm_probability < 1))
    fail<UsageError>("--mlm-probability {} must be above 0 and below 1", config_.mlm_probability);
  if (config_.batch_size == 0) fail<UsageError>("--batch-size must be at least 1");
  if (config_.epochs < 1 && config_.max_steps <= 0) fail<UsageError>("--epochs must be at least 1");
  if (config_.precision != "fp32" && !device_.is_cuda())
    fail<UsageError>("--precision {} needs a CUDA device; on CPU recmodel trains in fp32", config_.precision);
  masking_.probability = config_.mlm_probability;
  masking_.whole_word = config_.whole_word_masking;
  masking_.mask_id = corpus_.mask_id();
  masking_.vocab_size = static_cast<int32_t>(model_->config.vocab_size);
  if (static_cast<int64_t>(corpus_.tokenizer().vocab().size()) > model_->config.vocab_size)
    fail<DataError>("the vocabulary has {} tokens but the model's embeddings hold {}",
                    corpus_.tokenizer().vocab().size(), model_->config.vocab_size);
  model_->to(device_);
  optimizer_ = std::make_unique<AdamW>(weight_decay_groups(model_->named_parameters(), config_.weight_decay));
}

nlohmann::json Pretrainer::settings() const {
  return {{"mlm_probability", config_.mlm_probability}, {"whole_word_masking", config_.whole_word_masking},
          {"epochs", config_.epochs},                   {"max_steps", config_.max_steps},
          {"batch_size", config_.batch_size},           {"lr", config_.lr},
          {"warmup_ratio", config_.warmup_ratio},       {"weight_decay", config_.weight_decay},
          {"max_grad_norm", config_.max_grad_norm},     {"seed", config_.seed},
          {"shuffle_blocks", config_.shuffle_blocks},   {"corpus", corpus_.files()}};
}

void Pretrainer::append_log(const nlohmann::json& record) {
  std::ofstream out(work_dir_ / "pretrain_log.jsonl", std::ios::app);
  out << record.dump() << "\n";
}

void Pretrainer::save_checkpoint(const State& state) {
  StagingDir staging(work_dir_ / "checkpoint", /*replace=*/true);
  model::write_safetensors(staging.path() / "model.safetensors", parameters_of(*model_));
  optimizer_->save(staging.path() / "optimizer.pt");
  save_cpu_generator(staging.path() / "rng.pt");
  nlohmann::json doc = {{"format_version", kCheckpointFormatVersion}, {"kind", "pretrain"},
                        {"step", state.step},       {"epoch", state.epoch},
                        {"next_batch", state.next_batch}, {"last_loss", state.last_loss},
                        {"held_out", state.held_out}, {"settings", settings()}};
  write_file_atomic(staging.path() / "state.json", doc.dump(2) + "\n");
  staging.commit();
}

void Pretrainer::load_checkpoint(State& state) {
  const fs::path dir = work_dir_ / "checkpoint";
  std::error_code ec;
  if (!fs::exists(dir / "state.json", ec))
    fail<NotFoundError>("{}: no checkpoint to resume from; run without --resume to start", dir.string());
  nlohmann::json doc = read_json_file(dir / "state.json");
  if (doc.value("kind", std::string()) != "pretrain" || doc.value("format_version", 0) != kCheckpointFormatVersion)
    fail<DataError>("{}: not a checkpoint of recmodel pretrain (format {})", (dir / "state.json").string(),
                    kCheckpointFormatVersion);
  require_same_settings(settings(), doc["settings"]);
  load_parameters(*model_, dir / "model.safetensors");
  optimizer_->load(dir / "optimizer.pt", device_);
  load_cpu_generator(dir / "rng.pt");
  state.step = doc.at("step").get<int64_t>();
  state.epoch = doc.at("epoch").get<int64_t>();
  state.next_batch = doc.at("next_batch").get<int64_t>();
  state.last_loss = doc.at("last_loss").get<double>();
  state.held_out = doc.at("held_out");
}

double Pretrainer::train_step(const std::vector<TokenBlock>& blocks, uint64_t mask_seed, int64_t step, int64_t total,
                              int64_t warmup, int64_t& tokens) {
  model_->train();
  torch::manual_seed(step_seed(config_.seed, step, 0));
  const int32_t pad = corpus_.tokenizer().pad_id() >= 0 ? corpus_.tokenizer().pad_id() : 0;
  MaskedBatch batch = make_masked_batch(blocks, masking_, mask_seed, pad, device_);
  tokens += batch.tokens;
  torch::Tensor loss;
  {
    const bool autocast = config_.precision != "fp32";
    AutocastScope scope(autocast, config_.precision == "bf16" ? torch::kBFloat16 : torch::kHalf);
    torch::Tensor logits = model_->forward(batch.input_ids, batch.token_type_ids, batch.attention_mask, batch.positions);
    loss = torch::cross_entropy_loss(logits.to(torch::kFloat), batch.targets);
  }
  loss.backward();
  const double value = loss.item<double>();
  if (!std::isfinite(value))
    fail<DataError>("the masked-LM loss became {} at step {}; lower --lr (now {})", value, step + 1, config_.lr);
  std::vector<torch::Tensor> parameters;
  for (const auto& item : model_->named_parameters()) parameters.push_back(item.value());
  double scale = 1.0;
  if (config_.max_grad_norm > 0) {
    const double norm = gradient_norm(parameters);
    if (norm > config_.max_grad_norm) scale = config_.max_grad_norm / (norm + 1e-6);
  }
  optimizer_->step(config_.lr * linear_schedule(step, warmup, total), scale);
  optimizer_->zero_grad();
  return value;
}

nlohmann::json Pretrainer::evaluate() {
  torch::NoGradGuard no_grad;
  model_->eval();
  const int32_t pad = corpus_.tokenizer().pad_id() >= 0 ? corpus_.tokenizer().pad_id() : 0;
  double loss_sum = 0;
  int64_t predicted = 0, correct = 0, batch_index = 0;
  std::vector<TokenBlock> pending;
  auto run = [&] {
    MaskedBatch batch = make_masked_batch(pending, masking_, batch_mask_seed(kHeldOutMaskSeed, -1, batch_index++),
                                          pad, device_);
    torch::Tensor logits = model_->forward(batch.input_ids, batch.token_type_ids, batch.attention_mask, batch.positions)
                               .to(torch::kFloat);
    loss_sum += torch::cross_entropy_loss(logits, batch.targets, {}, at::Reduction::Sum).item<double>();
    correct += logits.argmax(-1).eq(batch.targets).sum().item<int64_t>();
    predicted += batch.targets.size(0);
    pending.clear();
  };
  corpus_.for_each_block(true, [&](const TokenBlock& block) {
    pending.push_back(block);
    if (pending.size() == config_.batch_size) run();
    return true;
  });
  if (!pending.empty()) run();
  if (predicted == 0) return nullptr;
  const double loss = loss_sum / static_cast<double>(predicted);
  return {{"masked_accuracy", static_cast<double>(correct) / static_cast<double>(predicted)},
          {"loss", loss},
          {"perplexity", std::exp(loss)},
          {"masked_tokens", predicted}};
}

PretrainResult Pretrainer::run(bool resume, const std::function<void(const PretrainStep&)>& on_step) {
  PretrainResult result;
  result.device = device_.str();
  result.corpus = corpus_.count();
  if (result.corpus.train_blocks == 0)
    fail<DataError>("{}: no text to learn from ({} lines{}); the corpus is one text per line",
                    fmt::format("{}", fmt::join(corpus_.files(), ", ")), result.corpus.lines,
                    result.corpus.lines > 0 ? ", all of them held out: lower --eval-fraction" : "");
  const int64_t batches_per_epoch =
      static_cast<int64_t>((result.corpus.train_blocks + config_.batch_size - 1) / config_.batch_size);
  const int64_t total = config_.max_steps > 0 ? config_.max_steps : batches_per_epoch * config_.epochs;
  const int64_t warmup = static_cast<int64_t>(std::llround(static_cast<double>(total) * config_.warmup_ratio));
  result.total_steps = total;

  State state;
  std::error_code ec;
  fs::create_directories(work_dir_, ec);
  if (resume) {
    load_checkpoint(state);
    result.resumed = true;
    result.resumed_from_step = state.step;
  } else {
    fs::remove(work_dir_ / "pretrain_log.jsonl", ec);
  }
  const auto started = Clock::now();
  int64_t tokens = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
  bool evaluated_now = false;
  auto evaluate_and_log = [&] {
    state.held_out = evaluate();
    evaluated_now = true;
    if (!state.held_out.is_null())
      append_log({{"step", state.step}, {"epoch", state.epoch}, {"held_out", state.held_out}});
  };

  while (state.step < total) {
    // The epoch's order: blocks through a shuffle buffer seeded by (seed, epoch); a resumed run
    // replays it and skips the batches already trained.
    ShuffleBuffer shuffle(config_.shuffle_blocks, batch_mask_seed(config_.seed, state.epoch, -1));
    std::vector<TokenBlock> batch;
    int64_t batch_index = 0;
    // Trains on `batch` unless a resumed run already did; returns whether to go on.
    auto train_batch = [&] {
      if (batch.empty()) return state.step < total;
      if (batch_index++ >= state.next_batch) {
        evaluated_now = false;
        state.last_loss =
            train_step(batch, batch_mask_seed(config_.seed, state.epoch, batch_index - 1), state.step, total, warmup, tokens);
        ++state.step;
        state.next_batch = batch_index;
        PretrainStep report{state.step, total, state.last_loss, config_.lr * linear_schedule(state.step - 1, warmup, total),
                            tokens / std::max(1e-9, elapsed())};
        if (on_step) on_step(report);
        if (config_.log_every > 0 && state.step % config_.log_every == 0)
          append_log({{"step", state.step}, {"epoch", state.epoch}, {"loss", state.last_loss}, {"lr", report.lr}});
        if (config_.eval_every > 0 && state.step % config_.eval_every == 0) evaluate_and_log();
        const bool stop = Trainer::stop_requested().load() || (config_.stop_after > 0 && state.step >= config_.stop_after);
        if (stop || (config_.checkpoint_every > 0 && state.step % config_.checkpoint_every == 0)) save_checkpoint(state);
        if (stop)
          throw Interrupted(fmt::format("pretraining stopped at step {} of {}; a checkpoint is in {}: continue with "
                                        "--resume",
                                        state.step, total, (work_dir_ / "checkpoint").string()));
      }
      batch.clear();
      return state.step < total;
    };
    auto add = [&](TokenBlock&& block) {
      batch.push_back(std::move(block));
      return batch.size() < config_.batch_size || train_batch();
    };
    bool going = true;
    corpus_.for_each_block(false, [&](const TokenBlock& block) {
      TokenBlock out;
      if (shuffle.push(block, out)) going = add(std::move(out));
      return going;
    });
    TokenBlock out;
    while (going && shuffle.drain(out)) going = add(std::move(out));
    if (going) train_batch();  // the last, smaller batch of the epoch
    if (state.step >= total) break;
    ++state.epoch;
    state.next_batch = 0;
    if (config_.eval_every == 0) evaluate_and_log();
  }
  if (!evaluated_now) evaluate_and_log();
  result.steps = state.step;
  result.epochs_completed = static_cast<int>(state.epoch) + (state.next_batch == batches_per_epoch ? 1 : 0);
  result.seconds = elapsed();
  result.tokens_per_second = tokens / std::max(1e-9, result.seconds);
  result.final_loss = state.last_loss;
  result.held_out = state.held_out;
  std::error_code remove_ec;
  fs::remove_all(work_dir_ / "checkpoint", remove_ec);
  return result;
}

}  // namespace recmodel::training
