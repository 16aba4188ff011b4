#include "commands/pretrain.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/progress.h"
#include "cli/suggest.h"
#include "commands/stop_signals.h"
#include "commands/tokenizer_source.h"
#include "common/error.h"
#include "common/files.h"
#include "model/bert_config.h"
#include "model/checkpoint.h"
#include "registry/registry.h"
#include "training/pretrainer.h"

namespace recmodel {

namespace {

struct PretrainOptions {
  std::vector<std::string> corpus;
  std::string model;   // continue pretraining this folder (or models:/ reference)
  std::string preset;  // or start from scratch with this preset and --vocab
  std::string vocab;
  bool cased = false;
  std::string out;
  std::string work_dir;  // "": <out>.pretrain
  bool force = false;
  bool resume = false;
  int64_t max_length = 128;
  double eval_fraction = 0.01;
  training::PretrainConfig config;
};

// The model to pretrain and its tokenizer, from --model or from --preset and --vocab.
struct Start {
  model::BertForMaskedLM model{nullptr};
  std::optional<tokenizer::BertTokenizer> tokenizer;
  nlohmann::json base = nullptr;
  std::vector<std::string> added, dropped;
};

Start open_start(const PretrainOptions& options, const std::string& registry_flag) {
  Start start;
  if (options.model.empty() == options.preset.empty())
    fail<UsageError>("start from a model with --model REF (continued pretraining), or from scratch with --preset P "
                     "--vocab FILE; not both");
  if (!options.model.empty()) {
    if (!options.vocab.empty() || options.cased)
      fail<UsageError>("--vocab and --cased go with --preset; a --model brings its own tokenizer");
    const registry::ResolvedModel resolved = registry::resolve_model(options.model, registry_flag);
    model::LoadedMaskedLM loaded = model::load_masked_lm(resolved.path);
    start.model = loaded.model;
    start.added = loaded.added;
    start.dropped = loaded.dropped;
    start.tokenizer.emplace(tokenizer::BertTokenizer::from_model_dir(resolved.path));
    start.base = resolved.version ? resolved.version->uri() : options.model;
    return start;
  }
  if (options.vocab.empty()) fail<UsageError>("--preset needs the vocabulary: --vocab FILE (vocab.txt)");
  TokenizerSource source;
  source.vocab = options.vocab;
  source.cased = options.cased;
  start.tokenizer.emplace(source.load());
  model::BertConfig config = model::preset_config(options.preset);
  config.vocab_size = static_cast<int64_t>(start.tokenizer->vocab().size());
  config.pad_token_id = start.tokenizer->pad_id() >= 0 ? start.tokenizer->pad_id() : 0;
  config.labels = {"LABEL_0", "LABEL_1"};  // no classes: Hugging Face's default for a model without a head
  config.validate("--preset " + options.preset);
  start.model = model::BertForMaskedLM(config);
  start.model->initialize_weights();
  return start;
}

void run_pretrain(const PretrainOptions& options, const Console& console) {
  const fs::path out = options.out;
  const fs::path work_dir = options.work_dir.empty() ? fs::path(options.out + ".pretrain") : fs::path(options.work_dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !options.force)
    fail<UsageError>("{}: already exists; choose another --out or pass --force to replace it", out.string());
  if (options.resume && !fs::exists(work_dir / "checkpoint" / "state.json", ec))
    fail<NotFoundError>("{}: no checkpoint to resume from; run without --resume to start",
                        (work_dir / "checkpoint").string());
  if (!options.resume && fs::exists(work_dir, ec)) {
    if (!options.force)
      fail<UsageError>("{}: holds the checkpoint of an earlier run; continue it with --resume, or pass --force to "
                       "start over",
                       work_dir.string());
    fs::remove_all(work_dir, ec);
  }
  torch::manual_seed(options.config.seed);  // a new model or head is drawn from --seed
  Start start = open_start(options, console.options().registry);
  if (options.max_length > start.model->config.max_position_embeddings)
    fail<UsageError>("--max-length {} is more than the model's {} positions", options.max_length,
                     start.model->config.max_position_embeddings);
  if (!start.added.empty() || !start.dropped.empty())
    console.warn("{}: {}{}{}", options.model,
                 start.dropped.empty() ? "" : fmt::format("dropped {} tensor(s) the masked-LM model does not use ({}); ",
                                                          start.dropped.size(), start.dropped.front()),
                 start.added.empty() ? "" : fmt::format("added a new masked-LM head ({} tensors, e.g. {})",
                                                        start.added.size(), start.added.front()),
                 "");
  training::MlmCorpus corpus(options.corpus, *start.tokenizer, options.max_length, options.eval_fraction,
                             options.config.seed);
  training::Pretrainer pretrainer(options.config, start.model, corpus, work_dir);

  StopSignals signals;
  ProgressBar progress(console, "pretrain", 0, " steps");
  std::function<void(const training::PretrainStep&)> on_step;
  if (progress.enabled()) {
    on_step = [&](const training::PretrainStep& report) {
      progress.set_label(fmt::format("pretrain loss {:.4f} lr {:.2e} {:.0f} tokens/s", report.loss, report.lr,
                                     report.tokens_per_second));
      progress.update(static_cast<uint64_t>(report.step));
    };
  }
  training::PretrainResult result = pretrainer.run(options.resume, on_step);
  progress.finish();

  const auto& counts = result.corpus;
  nlohmann::json corpus_record = nlohmann::json::array();
  for (const std::string& file : options.corpus) corpus_record.push_back({{"path", file}, {"sha256", sha256_file(file)}});
  int64_t parameters = 0;
  for (const auto& p : start.model->parameters()) parameters += p.numel();
  nlohmann::json lineage = {
      {"recmodel_version", RECMODEL_VERSION},
      {"created_by", "pretrain"},
      {"base_model", start.base},
      {"corpus", corpus_record},
      {"params",
       {{"preset", options.preset.empty() ? nlohmann::json(nullptr) : nlohmann::json(options.preset)},
        {"mlm_probability", options.config.mlm_probability},
        {"whole_word_masking", options.config.whole_word_masking},
        {"max_length", options.max_length},
        {"epochs", options.config.epochs},
        {"max_steps", options.config.max_steps},
        {"batch_size", options.config.batch_size},
        {"lr", options.config.lr},
        {"warmup_ratio", options.config.warmup_ratio},
        {"weight_decay", options.config.weight_decay},
        {"seed", options.config.seed},
        {"eval_fraction", options.eval_fraction},
        {"device", result.device},
        {"parameters", parameters}}},
      {"metrics", {{"held_out", result.held_out}}},
      {"pretraining",
       {{"steps", result.steps},
        {"epochs_completed", result.epochs_completed},
        {"seconds", result.seconds},
        {"tokens_per_second", result.tokens_per_second},
        {"lines", counts.lines},
        {"empty_lines", counts.empty_lines},
        {"cut_lines", counts.cut_lines},
        {"train_blocks", counts.train_blocks},
        {"held_out_blocks", counts.eval_blocks},
        {"train_tokens", counts.train_tokens}}},
  };
  StagingDir staging(out, options.force);
  model::save_masked_lm(staging.path(), start.model, *start.tokenizer, lineage);
  fs::copy_file(work_dir / "pretrain_log.jsonl", staging.path() / "pretrain_log.jsonl", ec);
  staging.commit();
  fs::remove_all(work_dir, ec);

  nlohmann::json document = {
      {"out", options.out},
      {"steps", result.steps},
      {"total_steps", result.total_steps},
      {"epochs_completed", result.epochs_completed},
      {"resumed_from_step", result.resumed ? nlohmann::json(result.resumed_from_step) : nlohmann::json(nullptr)},
      {"device", result.device},
      {"seconds", result.seconds},
      {"tokens_per_second", result.tokens_per_second},
      {"final_loss", result.final_loss},
      {"held_out", result.held_out},
      {"corpus", lineage["pretraining"]},
  };
  console.result(document, [&](std::FILE* file) {
    fmt::print(file, "pretrained {} steps on {} lines ({} blocks of up to {} tokens{}) in {:.1f} s on {} ({:.0f} tokens/s); "
                     "final loss {:.4f}\n",
               result.steps, counts.lines, counts.train_blocks, options.max_length,
               counts.empty_lines ? fmt::format(", {} empty lines skipped", counts.empty_lines) : std::string(),
               result.seconds, result.device, result.tokens_per_second, result.final_loss);
    if (result.held_out.is_null())
      fmt::print(file, "no held-out lines (--eval-fraction {}): nothing to report on\n", options.eval_fraction);
    else
      fmt::print(file, "held out ({} lines' blocks, {} masked tokens): masked-token accuracy {:.4f}, perplexity {:.2f}\n",
                 counts.eval_blocks, result.held_out["masked_tokens"].get<int64_t>(),
                 result.held_out["masked_accuracy"].get<double>(), result.held_out["perplexity"].get<double>());
    fmt::print(file, "wrote {} (BertForMaskedLM; fine-tune it with 'recmodel train --model {} --data DIR')\n", options.out,
               options.out);
  });
}

}  // namespace

CommandAction register_pretrain(CLI::App& command, const Console& console) {
  auto options = std::make_shared<PretrainOptions>();
  auto& config = options->config;
  command.footer(
      "\nThe corpus is text, one title, query or review per line (UTF-8; empty lines are skipped), read again\n"
      "at every epoch, so memory does not grow with its size. While training, <out>.pretrain/ holds the latest\n"
      "checkpoint; Ctrl-C or SIGTERM saves one and exits 130, and the same command with --resume continues.\n"
      "The result is a Hugging Face BertForMaskedLM folder: 'recmodel train --model OUT' or 'recmodel init\n"
      "--from OUT' fine-tune it with a new classification head.");
  const char* io_group = "Corpus and model";
  command.add_option("--corpus", options->corpus, "Unlabelled text, one text per line (repeat for several files)")
      ->type_name("FILE")
      ->required()
      ->group(io_group);
  command.add_option("--model", options->model, "Continue pretraining this model: a directory (any Hugging Face BERT) or models:/NAME@ALIAS")
      ->type_name("REF")
      ->group(io_group);
  command.add_option("--preset", options->preset, "Start from scratch with this size: tiny, mini, small or base")
      ->check(one_of({"tiny", "mini", "small", "base"}))
      ->group(io_group);
  command.add_option("--vocab", options->vocab, "With --preset: the vocabulary (vocab.txt, e.g. from recmodel vocab)")
      ->type_name("FILE")
      ->group(io_group);
  command.add_flag("--cased", options->cased, "With --vocab: keep case and accents")->group(io_group);
  command.add_option("--out", options->out, "Directory for the pretrained model (written when training ends)")
      ->type_name("DIR")
      ->required()
      ->group(io_group);
  command.add_flag("--force", options->force, "Replace --out, and discard an earlier run's checkpoint")->group(io_group);

  const char* mlm_group = "Masking";
  command.add_option("--mlm-probability", config.mlm_probability, "Share of the tokens predicted (80% [MASK], 10% random, 10% kept)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0).description(""))
      ->type_name("X")
      ->group(mlm_group);
  command.add_flag("--whole-word-masking,!--no-whole-word-masking", config.whole_word_masking,
                   "Mask every piece of a chosen word together (default on)")
      ->group(mlm_group);
  command.add_option("--max-length", options->max_length, "Tokens per packed block, [CLS] and [SEP] included")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{8}, int64_t{1} << 20).description(""))
      ->type_name("N")
      ->group(mlm_group);
  command.add_option("--eval-fraction", options->eval_fraction, "Share of the lines held out for masked-token accuracy and perplexity")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99).description(""))
      ->type_name("X")
      ->group(mlm_group);

  const char* opt_group = "Optimization";
  command.add_option("--epochs", config.epochs, "Passes over the corpus (new masks each time)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000).description(""))
      ->type_name("N")
      ->group(opt_group);
  command.add_option("--max-steps", config.max_steps, "Exactly this many optimizer steps instead (epochs repeat as needed); 0 = off")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40).description(""))
      ->type_name("N")
      ->group(opt_group);
  command.add_option("--batch-size", config.batch_size, "Blocks per batch")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20).description(""))
      ->type_name("N")
      ->group(opt_group);
  command.add_option("--lr", config.lr, "Peak learning rate (AdamW)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0).description(""))
      ->type_name("X")
      ->group(opt_group);
  command.add_option("--warmup-ratio", config.warmup_ratio, "Share of the steps with a linear warmup; then linear decay to 0")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0).description(""))
      ->type_name("X")
      ->group(opt_group);
  command.add_option("--weight-decay", config.weight_decay, "Decoupled weight decay (not on biases and LayerNorm)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0).description(""))
      ->type_name("X")
      ->group(opt_group);
  command.add_option("--seed", config.seed, "Seed of the model, held-out lines, data order, masks and dropout")
      ->capture_default_str()
      ->check(whole_number())
      ->type_name("N")
      ->group(opt_group);

  const char* run_group = "Checkpoints and device";
  command.add_option("--eval-every", config.eval_every, "Optimizer steps between held-out evaluations; 0 = each epoch")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40).description(""))
      ->type_name("N")
      ->group(run_group);
  command.add_option("--checkpoint-every", config.checkpoint_every, "Optimizer steps between checkpoints")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40).description(""))
      ->type_name("N")
      ->group(run_group);
  command.add_flag("--resume", options->resume, "Continue the interrupted run from <out>.pretrain/checkpoint")
      ->group(run_group);
  command.add_option("--stop-after", config.stop_after, "Stop after this many optimizer steps with a checkpoint, as if interrupted; 0 = off")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40).description(""))
      ->type_name("N")
      ->group(run_group);
  command.add_option("--work-dir", options->work_dir, "Where checkpoints live while training (default: <out>.pretrain)")
      ->type_name("DIR")
      ->group(run_group);
  command.add_option("--device", config.device, "auto (CUDA when present), cpu, cuda or cuda:N")
      ->capture_default_str()
      ->group(run_group);
  command.add_option("--precision", config.precision, "fp32, or bf16/fp16 autocast on CUDA")
      ->capture_default_str()
      ->check(one_of({"fp32", "bf16", "fp16"}))
      ->group(run_group);
  return [options, &console] { run_pretrain(*options, console); };
}

}  // namespace recmodel
