#include "model/predictor.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "common/error.h"

namespace recmodel::model {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) != 0) fail<UsageError>("--device {}: expected auto, cpu, cuda or cuda:N", name);
  if (!torch::cuda::is_available())
    fail<UsageError>("--device {}: no CUDA device is available to this libtorch ({}); use --device cpu or auto", name,
                     TORCH_VERSION);
  int index = 0;
  if (name.size() > 4) {
    if (name[4] != ':' || name.size() == 5 || name.size() > 8 ||
        name.find_first_not_of("0123456789", 5) != std::string::npos)
      fail<UsageError>("--device {}: expected cuda:N with N a device number", name);
    index = std::stoi(name.substr(5));
  }
  if (index >= static_cast<int>(torch::cuda::device_count()))
    fail<UsageError>("--device {}: only {} CUDA device(s) present", name, torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::vector<size_t> pass_starts(const std::vector<size_t>& lengths, size_t batch_size, size_t pass_cost_tokens) {
  const size_t n = lengths.size();
  std::vector<size_t> starts;
  if (pass_cost_tokens == 0) {
    for (size_t start = 0; start < n; start += batch_size) starts.push_back(start);
    return starts;
  }
  // cost[j]: the cheapest way to run the first j sequences; a pass [i, j) costs its padded
  // tokens, (j - i) x lengths[i] (the longest, as they are sorted), plus pass_cost_tokens. A
  // pass smaller than pass_cost_tokens costs as much as one of that size: on a CPU a forward
  // pass of a few tokens takes about as long as one of a few dozen.
  std::vector<size_t> cost(n + 1, std::numeric_limits<size_t>::max()), from(n + 1, 0);
  cost[0] = 0;
  for (size_t j = 1; j <= n; ++j) {
    for (size_t i = j > batch_size ? j - batch_size : 0; i < j; ++i) {
      const size_t c = cost[i] + pass_cost_tokens + std::max((j - i) * lengths[i], pass_cost_tokens);
      if (c < cost[j]) {
        cost[j] = c;
        from[j] = i;
      }
    }
  }
  for (size_t j = n; j > 0; j = from[j]) starts.push_back(from[j]);
  std::reverse(starts.begin(), starts.end());
  return starts;
}

Predictor::Predictor(BertForSequenceClassification model, int64_t pad_id, PredictorOptions options)
    : model_(std::move(model)), pad_id_(pad_id), options_(options) {
  if (options_.batch_size == 0) fail<UsageError>("--batch-size must be 1 or more");
  model_->eval();
  model_->to(options_.device);
  unpadded_ = model_->bert->runs_unpadded();
}

torch::Tensor Predictor::logits(const std::vector<SequenceView>& sequences) {
  const int64_t labels = num_labels();
  const int64_t vocab = model_->config.vocab_size;
  const size_t max_positions = static_cast<size_t>(model_->config.max_position_embeddings);
  const int64_t type_vocab = model_->config.type_vocab_size;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const SequenceView& s = sequences[i];
    if (s.length == 0) fail<DataError>("sequence {} is empty; the model needs at least one token", i);
    if (s.length > max_positions)
      fail<DataError>("sequence {} has {} tokens, more than the model's max_position_embeddings ({})", i, s.length,
                      max_positions);
    for (size_t j = 0; j < s.length; ++j) {
      if (s.ids[j] < 0 || s.ids[j] >= vocab)
        fail<DataError>("sequence {}: token id {} at position {} is outside the vocabulary (size {})", i, s.ids[j], j,
                        vocab);
      if (s.type_ids[j] < 0 || s.type_ids[j] >= type_vocab)
        fail<DataError>("sequence {}: token type {} at position {} is outside 0..{}", i, s.type_ids[j], j,
                        type_vocab - 1);
    }
  }

  torch::Tensor out = torch::empty({static_cast<int64_t>(sequences.size()), labels}, torch::kFloat32);
  if (sequences.empty()) return out;
  // Longest first: the first batch shows at once whether memory suffices.
  std::vector<size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sequences[a].length > sequences[b].length; });

  std::vector<size_t> lengths(order.size());
  for (size_t i = 0; i < order.size(); ++i) lengths[i] = sequences[order[i]].length;
  const std::vector<size_t> cuts =
      pass_starts(lengths, options_.batch_size, cuts_passes_by_length() ? options_.pass_cost_tokens : 0);

  torch::InferenceMode inference;
  for (size_t pass = 0; pass < cuts.size(); ++pass) {
    const size_t start = cuts[pass];
    const size_t count = (pass + 1 < cuts.size() ? cuts[pass + 1] : order.size()) - start;
    const size_t width = lengths[start];
    const auto rows = static_cast<int64_t>(count), columns = static_cast<int64_t>(width);
    torch::Tensor ids = torch::full({rows, columns}, pad_id_, torch::kInt64);
    torch::Tensor types = torch::zeros({rows, columns}, torch::kInt64);
    torch::Tensor mask = torch::zeros({rows, columns}, torch::kInt64);
    torch::Tensor positions = torch::empty({rows}, torch::kInt64);
    int64_t* id_data = ids.data_ptr<int64_t>();
    int64_t* type_data = types.data_ptr<int64_t>();
    int64_t* mask_data = mask.data_ptr<int64_t>();
    int64_t* position_data = positions.data_ptr<int64_t>();
    size_t pass_tokens = 0;
    for (size_t r = 0; r < count; ++r) {
      const SequenceView& s = sequences[order[start + r]];
      position_data[r] = static_cast<int64_t>(order[start + r]);
      int64_t* id_row = id_data + r * width;
      int64_t* type_row = type_data + r * width;
      int64_t* mask_row = mask_data + r * width;
      for (size_t j = 0; j < s.length; ++j) {
        id_row[j] = s.ids[j];
        type_row[j] = s.type_ids[j];
        mask_row[j] = 1;
      }
      pass_tokens += s.length;
    }
    tokens_ += pass_tokens;
    padded_tokens_ += unpadded_ ? pass_tokens : count * width;
    torch::Tensor batch_logits;
    if (options_.device.is_cpu()) {
      batch_logits = model_->forward(ids, types, mask);
    } else {
      batch_logits = model_->forward(ids.to(options_.device), types.to(options_.device), mask.to(options_.device))
                         .to(torch::kCPU);
    }
    out.index_copy_(0, positions, batch_logits.to(torch::kFloat32));
  }
  return out;
}

torch::Tensor Predictor::logits(const std::vector<tokenizer::Encoding>& encodings) {
  std::vector<SequenceView> views;
  views.reserve(encodings.size());
  for (const tokenizer::Encoding& e : encodings) views.push_back({e.ids.data(), e.type_ids.data(), e.ids.size()});
  return logits(views);
}

}  // namespace recmodel::model
