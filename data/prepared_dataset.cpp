#include "data/prepared_dataset.h"

#include <algorithm>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "common/json.h"
#include "data/preprocess.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel::data {

namespace {

// A manifest lists inputs, counts and labels: a few MB even for 100k classes. Anything larger is
// not one recmodel wrote, and is refused before it is read into memory.
constexpr uintmax_t kMaxManifestBytes = 64u << 20;

// Reads the settings preprocess recorded; a manifest without them (written before they were
// recorded) has them in its tokenizer folder.
TokenizerSettings read_settings(const nlohmann::json& manifest, const fs::path& tokenizer_dir,
                                const std::string& origin) {
  tokenizer::TokenizerConfig config;
  const auto tokenizer = manifest.find("tokenizer");
  const nlohmann::json* settings = nullptr;
  if (tokenizer != manifest.end() && tokenizer->is_object()) {
    auto found = tokenizer->find("settings");
    if (found != tokenizer->end() && found->is_object()) settings = &*found;
  }
  if (settings) {
    auto read_bool = [&](const char* key, bool& out) {
      auto it = settings->find(key);
      if (it == settings->end() || it->is_null()) return;
      if (!it->is_boolean())
        fail<DataError>("{}: tokenizer.settings.{} must be true or false, found {}", origin, key, json_excerpt(*it));
      out = it->get<bool>();
    };
    read_bool("do_lower_case", config.do_lower_case);
    read_bool("tokenize_chinese_chars", config.tokenize_chinese_chars);
    bool strip = false;
    auto it = settings->find("strip_accents");
    if (it != settings->end() && !it->is_null()) {
      read_bool("strip_accents", strip);
      config.strip_accents = strip;
    }
  } else {
    std::error_code ec;
    if (fs::exists(tokenizer_dir / "tokenizer_config.json", ec))
      config = tokenizer::TokenizerConfig::from_json_file(tokenizer_dir / "tokenizer_config.json");
  }
  return {config.do_lower_case, config.strips_accents(), config.tokenize_chinese_chars};
}

}  // namespace

PreparedDataset PreparedDataset::open(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail<NotFoundError>("{}: no such dataset directory", dir.string());
  const fs::path manifest_path = dir / "manifest.json";
  if (!fs::exists(manifest_path, ec))
    fail<NotFoundError>("{}: no manifest.json; is this a directory written by 'recmodel preprocess'?", dir.string());
  const std::string origin = manifest_path.string();
  const uintmax_t bytes = fs::file_size(manifest_path, ec);
  if (!ec && bytes > kMaxManifestBytes)
    fail<DataError>("{}: {} bytes, more than a dataset manifest holds ({} MiB at most); is this a directory written "
                    "by 'recmodel preprocess'?",
                    origin, bytes, kMaxManifestBytes >> 20);
  PreparedDataset dataset;
  dataset.dir = dir;
  const std::string text = read_file(manifest_path);
  dataset.manifest_sha256 = sha256_hex(text);
  dataset.manifest = parse_json(text, origin);
  const auto& m = dataset.manifest;
  auto string_field = [&](const nlohmann::json& object, const char* key) -> const nlohmann::json* {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? &*it : nullptr;
  };
  const nlohmann::json* format = m.is_object() ? string_field(m, "format") : nullptr;
  if (!format || format->get<std::string>() != kDatasetFormatName)
    fail<DataError>("{}: not a recmodel dataset manifest (\"format\" is not \"{}\")", origin, kDatasetFormatName);
  const auto version_it = m.find("format_version");
  if (version_it == m.end() || !version_it->is_number_unsigned() || version_it->get<uint64_t>() < 1)
    fail<DataError>("{}: missing or invalid format_version", origin);
  const uint64_t version = version_it->get<uint64_t>();
  if (version > kDatasetFormatVersion)
    fail<DataError>("{}: dataset format version {} is newer than this recmodel reads ({}); upgrade recmodel", origin,
                    version, kDatasetFormatVersion);

  const nlohmann::json* task = string_field(m, "task");
  if (!task) fail<DataError>("{}: incomplete manifest: no \"task\" (classification or regression)", origin);
  try {
    dataset.task = parse_task(task->get<std::string>());
  } catch (const UsageError&) {
    fail<DataError>("{}: \"task\" is {}, expected \"classification\" or \"regression\"", origin, json_excerpt(*task));
  }
  if (dataset.task == Task::classification) {
    auto labels = m.find("labels");
    if (labels == m.end() || !labels->is_array() || labels->empty())
      fail<DataError>("{}: a classification dataset without labels", origin);
    std::set<std::string> seen;
    for (const auto& label : *labels) {
      if (!label.is_string())
        fail<DataError>("{}: labels[{}] is {}, expected a string", origin, dataset.labels.size(), json_excerpt(label));
      if (!seen.insert(label.get<std::string>()).second)
        fail<DataError>("{}: label {} is listed twice", origin, json_excerpt(label));
      dataset.labels.push_back(label.get<std::string>());
    }
  }
  auto tokenizer = m.find("tokenizer");
  const nlohmann::json* vocab_sha =
      tokenizer != m.end() && tokenizer->is_object() ? string_field(*tokenizer, "vocab_sha256") : nullptr;
  if (!vocab_sha) fail<DataError>("{}: incomplete manifest: no tokenizer.vocab_sha256", origin);
  dataset.vocab_sha256 = vocab_sha->get<std::string>();
  if (dataset.vocab_sha256.size() != 64 ||
      dataset.vocab_sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    fail<DataError>("{}: tokenizer.vocab_sha256 is {}, expected 64 hexadecimal digits", origin, json_excerpt(*vocab_sha));
  if (auto size = tokenizer->find("vocab_size"); size != tokenizer->end() && size->is_number_unsigned())
    dataset.vocab_size = size->get<uint64_t>();
  dataset.tokenizer_settings = read_settings(m, dataset.tokenizer_dir(), origin);
  auto max_length = m.find("max_length");
  if (max_length == m.end() || !max_length->is_number_unsigned())
    fail<DataError>("{}: incomplete manifest: no max_length (a whole number)", origin);
  dataset.max_length = max_length->get<size_t>();
  if (auto splits = m.find("splits"); splits != m.end() && splits->is_object()) {
    for (const auto& [name, entry] : splits->items()) {
      if (!entry.is_object()) continue;
      auto examples = entry.find("examples");
      dataset.split_examples[name] =
          examples != entry.end() && examples->is_number_unsigned() ? examples->get<uint64_t>() : 0;
    }
  }
  return dataset;
}

bool PreparedDataset::has_split(const std::string& name) const {
  std::error_code ec;
  if (!fs::exists(split_path(name), ec)) return false;
  auto it = split_examples.find(name);
  return it != split_examples.end() && it->second > 0;
}

DatasetSplit PreparedDataset::open_split(const std::string& name) const {
  const fs::path path = split_path(name);
  std::error_code ec;
  if (!fs::exists(path, ec)) fail<NotFoundError>("{}: the dataset has no {} split", path.string(), name);
  return DatasetSplit::open(path);
}

tokenizer::BertTokenizer PreparedDataset::load_tokenizer() const {
  tokenizer::BertTokenizer tokenizer = tokenizer::BertTokenizer::from_model_dir(tokenizer_dir());
  const std::string sha = tokenizer.vocab().sha256();
  if (sha != vocab_sha256)
    fail<IntegrityError>("{}: its vocabulary (sha256 {}…) is not the one {}/manifest.json names ({}…); the dataset was "
                         "changed after 'recmodel preprocess' wrote it: prepare it again",
                         tokenizer_dir().string(), sha.substr(0, 12), dir.string(), vocab_sha256.substr(0, 12));
  const auto& c = tokenizer.config();
  if (TokenizerSettings{c.do_lower_case, c.strips_accents(), c.tokenize_chinese_chars} != tokenizer_settings)
    fail<IntegrityError>("{}: its settings are not the ones {}/manifest.json names; the dataset was changed after "
                         "'recmodel preprocess' wrote it: prepare it again",
                         tokenizer_dir().string(), dir.string());
  return tokenizer;
}

DatasetSplit PreparedDataset::require_split(const std::string& name) const {
  static const std::vector<std::string> kNames = {"train", "dev", "test"};
  if (std::find(kNames.begin(), kNames.end(), name) == kNames.end())
    fail<UsageError>("--split {}: choose train, dev or test", json_excerpt(nlohmann::json(name), 24));
  std::string present;
  for (const std::string& other : kNames)
    if (has_split(other)) present += (present.empty() ? "" : ", ") + other;
  auto refuse = [&] {
    fail<NotFoundError>("{}: the dataset has no examples in split '{}' (--split); {}", dir.string(), name,
                        present.empty() ? std::string("it has none") : "it has examples in " + present);
  };
  if (!has_split(name)) refuse();
  DatasetSplit split = open_split(name);
  if (split.size() == 0) refuse();
  return split;
}

}  // namespace recmodel::data
