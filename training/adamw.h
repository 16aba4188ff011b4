// AdamW with decoupled weight decay, computed as torch.optim.AdamW computes it, but fused: on the
// CPU each parameter is updated in one pass over its memory (torch makes eight, each allocating a
// temporary the size of the parameter). A gradient scale (clipping, fp16 loss scaling) is applied
// inside the same pass instead of as a separate multiply.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <torch/torch.h>

namespace recmodel::training {

namespace fs = std::filesystem;

struct ParamGroup {
  std::vector<torch::Tensor> params;
  double weight_decay = 0;
};

class AdamW {
 public:
  explicit AdamW(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);

  // One update at learning rate `lr` with every gradient multiplied by `grad_scale`. Parameters
  // without a gradient are left alone and their step count does not advance (as in torch).
  void step(double lr, double grad_scale = 1.0);

  // Drops the gradients (set to none): the next backward writes fresh ones instead of adding to
  // zeroed memory, which saves two passes over every gradient.
  void zero_grad();

  // Moments and step counts, in parameter order; load checks they fit these parameters.
  void save(const fs::path& file) const;
  void load(const fs::path& file, const torch::Device& device);

 private:
  struct Slot {
    torch::Tensor param;
    double weight_decay;
    torch::Tensor exp_avg, exp_avg_sq;
    int64_t steps = 0;
  };
  void update(Slot& slot, const torch::Tensor& grad, double lr, double grad_scale);

  std::vector<Slot> slots_;
  double beta1_, beta2_, eps_;
};

// Returns the parameters in two groups, Hugging Face's: `weight_decay` for weights, none for
// biases and LayerNorm parameters.
std::vector<ParamGroup> weight_decay_groups(const torch::OrderedDict<std::string, torch::Tensor>& parameters,
                                            double weight_decay);

// Returns the global L2 norm of the gradients of `params` (undefined gradients count as zero).
double gradient_norm(const std::vector<torch::Tensor>& params);

}  // namespace recmodel::training
