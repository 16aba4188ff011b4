#include "commands/init.h"

#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/suggest.h"
#include "commands/tokenizer_source.h"
#include "common/error.h"
#include "common/files.h"
#include "data/labels.h"
#include "data/prepared_dataset.h"
#include "model/checkpoint.h"
#include "model/model_open.h"
#include "registry/registry.h"

namespace recmodel {

namespace {

struct InitOptions {
  std::string preset = "small";
  std::string vocab;
  bool cased = false;
  std::string labels;
  std::string data;
  std::string task = "classification";
  std::string out;
  std::string from;  // a pretrained encoder (recmodel pretrain, a Hugging Face BERT) to put a head on
  uint64_t seed = 42;
  bool force = false;
  const CLI::Option* task_option = nullptr;
  const CLI::Option* preset_option = nullptr;
};

// init --from DIR --data DIR: the encoder of DIR with a new head for the dataset's labels.
void run_init_from(const InitOptions& options, const Console& console) {
  if (options.data.empty())
    fail<UsageError>("--from needs the dataset whose labels the new head answers: --data DIR (recmodel preprocess)");
  if (!options.vocab.empty() || options.cased || !options.labels.empty() || options.preset_option->count() > 0 ||
      options.task_option->count() > 0)
    fail<UsageError>("--from brings the architecture and tokenizer, --data the labels and task: drop --preset, "
                     "--vocab, --cased, --labels and --task");
  auto dataset = data::PreparedDataset::open(options.data);
  const registry::ResolvedModel base = registry::resolve_model(options.from, console.options().registry);
  StagingDir staging(options.out, options.force);
  torch::manual_seed(options.seed);
  model::OpenedModel opened = model::open_for_training(base.path, options.from, dataset, /*reset_head=*/true,
                                                       [&](const std::string& line) { console.warn("{}", line); });
  nlohmann::json lineage = {
      {"recmodel_version", RECMODEL_VERSION},
      {"created_by", "init"},
      {"base_model", base.version ? base.version->uri() : options.from},
      {"init", {{"from", options.from}, {"seed", options.seed}, {"initialized", opened.loaded.initialized},
                {"dropped", opened.loaded.ignored}}},
      {"dataset", {{"path", options.data}, {"manifest_sha256", dataset.manifest_sha256}}},
  };
  model::save_model(staging.path(), opened.loaded.model, opened.tokenizer, lineage);
  staging.commit();
  const model::BertConfig& config = opened.loaded.config;
  nlohmann::json document = {
      {"out", options.out},
      {"from", options.from},
      {"initialized", opened.loaded.initialized},
      {"dropped", opened.loaded.ignored},
      {"labels", config.problem_type == model::ProblemType::regression ? nlohmann::json::array()
                                                                       : nlohmann::json(config.labels)},
      {"seed", options.seed},
  };
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "wrote {}: the encoder of {} ({} layers, hidden {}) with a new {}\n", options.out, options.from,
               config.num_hidden_layers, config.hidden_size,
               config.problem_type == model::ProblemType::regression
                   ? std::string("regression head")
                   : fmt::format("head for {} labels ({})", config.labels.size(), fmt::join(config.labels, ", ")));
    fmt::print(out, "train it with 'recmodel train --model {} --data {}'\n", options.out, options.data);
  });
}

void run_init(const InitOptions& options, const Console& console) {
  if (!options.from.empty()) return run_init_from(options, console);
  if (options.vocab.empty() == options.data.empty())
    fail<UsageError>("give the vocabulary with --vocab FILE, or a prepared dataset with --data DIR (its "
                     "tokenizer and labels are used), not both");
  if (!options.data.empty() && !options.labels.empty())
    fail<UsageError>("--labels comes from the dataset with --data; drop one of them");
  if (!options.data.empty() && options.task_option->count() > 0)
    fail<UsageError>("--task comes from the dataset with --data; drop --task");
  if (!options.data.empty() && options.cased)
    fail<UsageError>("--cased applies to --vocab; with --data the dataset's tokenizer settings are used");

  model::BertConfig config = model::preset_config(options.preset);
  std::optional<tokenizer::BertTokenizer> tokenizer;
  nlohmann::json dataset_record = nullptr;
  if (!options.data.empty()) {
    auto dataset = data::PreparedDataset::open(options.data);
    tokenizer.emplace(dataset.load_tokenizer());
    if (dataset.task == data::Task::regression) {
      config.problem_type = model::ProblemType::regression;
      config.labels = {"LABEL_0"};
    } else {
      config.labels = dataset.labels;
    }
    dataset_record = {{"path", options.data}, {"manifest_sha256", dataset.manifest_sha256}};
  } else {
    TokenizerSource source;
    source.vocab = options.vocab;
    source.cased = options.cased;
    tokenizer.emplace(source.load());
    if (data::parse_task(options.task) == data::Task::regression) {
      if (!options.labels.empty()) fail<UsageError>("--labels is for classification; a regression model has one output");
      config.problem_type = model::ProblemType::regression;
      config.labels = {"LABEL_0"};
    } else {
      if (options.labels.empty())
        fail<UsageError>("a classifier needs its labels: --labels neg,pos or --data DIR of a prepared dataset");
      config.labels = data::parse_label_list(options.labels);
      if (config.labels.size() < 2) fail<UsageError>("a classifier needs at least two labels; got {}", options.labels);
    }
  }
  config.vocab_size = static_cast<int64_t>(tokenizer->vocab().size());
  config.pad_token_id = tokenizer->pad_id() >= 0 ? tokenizer->pad_id() : 0;
  config.validate("--preset " + options.preset);

  StagingDir staging(options.out, options.force);
  torch::manual_seed(options.seed);
  model::BertForSequenceClassification model(config);
  model->initialize_weights();
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  nlohmann::json lineage = {
      {"recmodel_version", RECMODEL_VERSION},
      {"created_by", "init"},
      {"init", {{"preset", options.preset}, {"seed", options.seed}, {"parameters", parameters}}},
      {"dataset", dataset_record},
  };
  model::save_model(staging.path(), model, *tokenizer, lineage);
  staging.commit();

  nlohmann::json document = {
      {"out", options.out},
      {"preset", options.preset},
      {"parameters", parameters},
      {"layers", config.num_hidden_layers},
      {"hidden_size", config.hidden_size},
      {"heads", config.num_attention_heads},
      {"vocab_size", config.vocab_size},
      {"problem_type", config.problem_type == model::ProblemType::regression ? "regression"
                                                                             : "single_label_classification"},
      {"labels", config.problem_type == model::ProblemType::regression ? nlohmann::json::array()
                                                                       : nlohmann::json(config.labels)},
      {"seed", options.seed},
  };
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "wrote {}: BERT {} ({} layers, hidden {}, {} heads), {:.2f} M parameters, vocabulary {}\n",
               options.out, options.preset, config.num_hidden_layers, config.hidden_size,
               config.num_attention_heads, static_cast<double>(parameters) / 1e6, config.vocab_size);
    if (config.problem_type == model::ProblemType::regression)
      fmt::print(out, "regression head (one output, mean squared error)\n");
    else
      fmt::print(out, "classification head: {} labels ({})\n", config.labels.size(), fmt::join(config.labels, ", "));
    fmt::print(out, "randomly initialized (seed {}): train it with 'recmodel train --model {} --data DIR'\n",
               options.seed, options.out);
  });
}

}  // namespace

CommandAction register_init(CLI::App& command, const Console& console) {
  auto options = std::make_shared<InitOptions>();
  command.footer(
      "\nWrites a Hugging Face model directory (config.json, model.safetensors, tokenizer files, recmodel.json)\n"
      "with Hugging Face's initializer: normal(0, 0.02) weights, zero biases, unit LayerNorm.\n"
      "Presets: tiny (2 layers, hidden 128), mini (4, 256), small (4, 512), base (12, 768: BERT-base).");
  const char* model_group = "Model";
  options->preset_option = command.add_option("--preset", options->preset, "Architecture size")
      ->check(one_of(model::preset_names()))
      ->capture_default_str()
      ->group(model_group);
  command.add_option("--from", options->from,
                     "A pretrained encoder (recmodel pretrain, a Hugging Face BERT; a directory or models:/ "
                     "reference) to put a new head on, for the labels of --data")
      ->type_name("REF")
      ->group(model_group);
  command.add_option("--seed", options->seed, "Seed of the random weights; the same seed gives the same model")
      ->check(whole_number())
      ->type_name("N")
      ->capture_default_str()
      ->group(model_group);
  const char* data_group = "Vocabulary and labels";
  command.add_option("--vocab", options->vocab, "WordPiece vocab.txt (uncased unless --cased)")
      ->type_name("FILE")
      ->group(data_group);
  command.add_flag("--cased", options->cased, "With --vocab: keep case and accents")->group(data_group);
  command.add_option("--labels", options->labels, "Class names in id order, e.g. neg,neu,pos")
      ->type_name("LIST")
      ->group(data_group);
  options->task_option =
      command.add_option("--task", options->task, "classification (labels) or regression (one numeric output)")
          ->check(one_of({"classification", "regression"}))
          ->capture_default_str()
          ->group(data_group);
  command.add_option("--data", options->data,
                     "Prepared dataset (recmodel preprocess): its tokenizer, task and labels are used")
      ->type_name("DIR")
      ->group(data_group);
  const char* output_group = "Output";
  command.add_option("--out", options->out, "Model directory to create (see --force)")
      ->type_name("DIR")
      ->required()
      ->group(output_group);
  command.add_flag("--force", options->force, "Replace an existing output directory")->group(output_group);
  return [options, &console] { run_init(*options, console); };
}

}  // namespace recmodel
