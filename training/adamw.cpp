#include "training/adamw.h"

#include <ATen/Parallel.h>
#include <torch/serialize.h>

#include <cmath>
#include <string>

#include "common/error.h"

namespace recmodel::training {

namespace {

struct Coefficients {
  float decay;          // 1 - lr * weight_decay
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float bias_correction2_sqrt;
  float eps;
  float step_size;      // lr / bias_correction1
  float grad_scale;
};

// The update of elements [begin, end); an AVX2 clone is picked at load time where the CPU has it.
// Coefficients are copied to locals and the arrays marked unaliased so that the loop vectorizes
// (the file is also compiled with -fno-math-errno, for sqrt, and the dynamic vectorizer cost model).
__attribute__((target_clones("avx2", "default"))) void fused_update(float* __restrict param,
                                                                    const float* __restrict grad,
                                                                    float* __restrict exp_avg,
                                                                    float* __restrict exp_avg_sq, int64_t begin,
                                                                    int64_t end, const Coefficients& c) {
  const float decay = c.decay, beta1 = c.beta1, one_minus_beta1 = c.one_minus_beta1, beta2 = c.beta2,
              one_minus_beta2 = c.one_minus_beta2, bias_correction2_sqrt = c.bias_correction2_sqrt, eps = c.eps,
              step_size = c.step_size, grad_scale = c.grad_scale;
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i] * grad_scale;
    const float m = exp_avg[i] * beta1 + one_minus_beta1 * g;
    const float v = exp_avg_sq[i] * beta2 + one_minus_beta2 * (g * g);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const float denom = std::sqrt(v) / bias_correction2_sqrt + eps;
    param[i] = param[i] * decay - step_size * (m / denom);
  }
}

bool fusable(const torch::Tensor& param, const torch::Tensor& grad) {
  return param.device().is_cpu() && param.scalar_type() == torch::kFloat && grad.scalar_type() == torch::kFloat &&
         param.is_contiguous() && grad.is_contiguous() && grad.layout() == torch::kStrided;
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, double beta1, double beta2, double eps)
    : beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (auto& group : groups)
    for (auto& param : group.params) {
      Slot slot;
      slot.param = param;
      slot.weight_decay = group.weight_decay;
      slot.exp_avg = torch::zeros_like(param, torch::MemoryFormat::Contiguous);
      slot.exp_avg_sq = torch::zeros_like(param, torch::MemoryFormat::Contiguous);
      slots_.push_back(std::move(slot));
    }
}

void AdamW::step(double lr, double grad_scale) {
  torch::NoGradGuard no_grad;
  for (auto& slot : slots_) {
    const torch::Tensor& grad = slot.param.grad();
    if (grad.defined()) update(slot, grad, lr, grad_scale);
  }
}

void AdamW::update(Slot& slot, const torch::Tensor& grad, double lr, double grad_scale) {
  ++slot.steps;
  const double bias_correction1 = 1 - std::pow(beta1_, static_cast<double>(slot.steps));
  const double bias_correction2 = 1 - std::pow(beta2_, static_cast<double>(slot.steps));
  const double step_size = lr / bias_correction1;
  torch::Tensor& param = slot.param;
  if (fusable(param, grad)) {
    const Coefficients c{static_cast<float>(1 - lr * slot.weight_decay),
                         static_cast<float>(beta1_),
                         static_cast<float>(1 - beta1_),
                         static_cast<float>(beta2_),
                         static_cast<float>(1 - beta2_),
                         static_cast<float>(std::sqrt(bias_correction2)),
                         static_cast<float>(eps_),
                         static_cast<float>(step_size),
                         static_cast<float>(grad_scale)};
    float* p = param.data_ptr<float>();
    const float* g = grad.data_ptr<float>();
    float* m = slot.exp_avg.data_ptr<float>();
    float* v = slot.exp_avg_sq.data_ptr<float>();
    at::parallel_for(0, param.numel(), 1 << 15,
                     [&](int64_t begin, int64_t end) { fused_update(p, g, m, v, begin, end, c); });
    return;
  }
  // Other devices and layouts: torch.optim.AdamW's own sequence of tensor operations.
  const torch::Tensor scaled = grad_scale == 1.0 ? grad : grad * grad_scale;
  if (slot.weight_decay != 0) param.mul_(1 - lr * slot.weight_decay);
  slot.exp_avg.mul_(beta1_).add_(scaled, 1 - beta1_);
  slot.exp_avg_sq.mul_(beta2_).addcmul_(scaled, scaled, 1 - beta2_);
  const torch::Tensor denom = (slot.exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(eps_);
  param.addcdiv_(slot.exp_avg, denom, -step_size);
}

void AdamW::zero_grad() {
  for (auto& slot : slots_) slot.param.mutable_grad().reset();
}

void AdamW::save(const fs::path& file) const {
  torch::serialize::OutputArchive archive;
  std::vector<int64_t> steps;
  for (size_t i = 0; i < slots_.size(); ++i) {
    archive.write("exp_avg." + std::to_string(i), slots_[i].exp_avg.cpu());
    archive.write("exp_avg_sq." + std::to_string(i), slots_[i].exp_avg_sq.cpu());
    steps.push_back(slots_[i].steps);
  }
  archive.write("steps", torch::tensor(steps, torch::kLong));
  archive.save_to(file.string());
}

void AdamW::load(const fs::path& file, const torch::Device& device) {
  torch::serialize::InputArchive archive;
  torch::Tensor steps;
  try {
    archive.load_from(file.string(), torch::kCPU);
    archive.read("steps", steps);
  } catch (const c10::Error& e) {
    fail<DataError>("{}: not a recmodel optimizer state: {}", file.string(), e.what_without_backtrace());
  }
  if (steps.dim() != 1 || steps.numel() != static_cast<int64_t>(slots_.size()))
    fail<DataError>("{}: optimizer state for {} parameters, the model has {}", file.string(), steps.numel(),
                    slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    torch::Tensor exp_avg, exp_avg_sq;
    try {
      archive.read("exp_avg." + std::to_string(i), exp_avg);
      archive.read("exp_avg_sq." + std::to_string(i), exp_avg_sq);
    } catch (const c10::Error& e) {
      fail<DataError>("{}: optimizer state of parameter {} is missing", file.string(), i);
    }
    if (exp_avg.sizes() != slots_[i].param.sizes() || exp_avg_sq.sizes() != slots_[i].param.sizes())
      fail<DataError>("{}: optimizer state of parameter {} has another shape than the parameter", file.string(), i);
    slots_[i].exp_avg = exp_avg.to(device, slots_[i].param.scalar_type()).contiguous();
    slots_[i].exp_avg_sq = exp_avg_sq.to(device, slots_[i].param.scalar_type()).contiguous();
    slots_[i].steps = steps[static_cast<int64_t>(i)].item<int64_t>();
  }
}

double gradient_norm(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& param : params)
    if (param.grad().defined()) norms.push_back(param.grad().norm(2).to(torch::kFloat));
  if (norms.empty()) return 0;
  return torch::stack(norms).norm(2).item<double>();
}

std::vector<ParamGroup> weight_decay_groups(const torch::OrderedDict<std::string, torch::Tensor>& parameters,
                                            double weight_decay) {
  auto no_decay = [](const std::string& name) {
    const std::string bias = ".bias";
    return (name.size() >= bias.size() && name.compare(name.size() - bias.size(), bias.size(), bias) == 0) ||
           name == "bias" || name.find("LayerNorm.") != std::string::npos;
  };
  ParamGroup decay{{}, weight_decay}, plain{{}, 0.0};
  for (const auto& item : parameters) (no_decay(item.key()) ? plain : decay).params.push_back(item.value());
  return {std::move(decay), std::move(plain)};
}

}  // namespace recmodel::training
