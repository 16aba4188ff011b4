// The fused AdamW against libtorch's own torch::optim::AdamW (the reference it replaces): the same
// parameters, gradients and decay groups give the same weights over many steps; a gradient scale
// equals scaling the gradients first; the state survives save/load and a wrong state is refused.
#include "training/adamw.h"

#include <doctest/doctest.h>

#include "common/error.h"
#include "tests/support.h"

using namespace recmodel;
namespace t = recmodel::testing;

namespace {

struct Setup {
  std::vector<torch::Tensor> ours, theirs;
};

// A matrix (large enough to be split across threads), a vector and a non-contiguous view's copy.
Setup make_parameters() {
  torch::manual_seed(7);
  Setup s;
  for (auto shape : std::vector<std::vector<int64_t>>{{300, 257}, {513}, {7, 3}}) {
    auto value = torch::randn(shape) * 0.1;
    s.ours.push_back(value.clone().set_requires_grad(true));
    s.theirs.push_back(value.clone().set_requires_grad(true));
  }
  return s;
}

void set_gradients(Setup& s, int step, double scale_theirs) {
  torch::manual_seed(100 + step);
  for (size_t i = 0; i < s.ours.size(); ++i) {
    auto grad = torch::randn(s.ours[i].sizes()) * (1 + step);
    s.ours[i].mutable_grad() = grad.clone();
    s.theirs[i].mutable_grad() = grad * scale_theirs;
  }
}

double max_difference(const Setup& s) {
  double worst = 0;
  for (size_t i = 0; i < s.ours.size(); ++i)
    worst = std::max(worst, (s.ours[i] - s.theirs[i]).abs().max().item<double>());
  return worst;
}

torch::optim::AdamW reference(Setup& s) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{s.theirs[0], s.theirs[2]},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0.1)));
  groups.emplace_back(std::vector<torch::Tensor>{s.theirs[1]},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0)));
  return torch::optim::AdamW(std::move(groups), torch::optim::AdamWOptions(1e-2));
}

training::AdamW ours(Setup& s) {
  return training::AdamW({{{s.ours[0], s.ours[2]}, 0.1}, {{s.ours[1]}, 0.0}});
}

}  // namespace

TEST_CASE("fused AdamW follows torch::optim::AdamW step for step, with decay groups and a changing lr") {
  const int threads = torch::get_num_threads();
  torch::set_num_threads(2);  // the 77k-element matrix is then updated in chunks on two threads
  Setup s = make_parameters();
  auto theirs = reference(s);
  auto mine = ours(s);
  for (int step = 0; step < 25; ++step) {
    const double lr = 1e-2 * (1.0 - step / 30.0);
    for (auto& group : theirs.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    set_gradients(s, step, 1.0);
    theirs.step();
    mine.step(lr);
  }
  // Weights moved ~25 * lr; float rounding of two operation orders stays far below that.
  torch::set_num_threads(threads);
  CHECK(max_difference(s) < 2e-6);
  CHECK((s.ours[0] - make_parameters().ours[0]).abs().max().item<double>() > 0.05);
}

TEST_CASE("a gradient scale inside the fused pass equals scaled gradients") {
  Setup s = make_parameters();
  auto theirs = reference(s);
  auto mine = ours(s);
  for (int step = 0; step < 5; ++step) {
    set_gradients(s, step, 0.25);
    theirs.step();
    mine.step(1e-2, 0.25);
  }
  CHECK(max_difference(s) < 2e-6);
}

TEST_CASE("zero_grad drops gradients and a parameter without one is left alone") {
  Setup s = make_parameters();
  auto mine = ours(s);
  set_gradients(s, 0, 1.0);
  mine.zero_grad();
  for (const auto& p : s.ours) CHECK_FALSE(p.grad().defined());
  const auto before = s.ours[0].clone();
  mine.step(1e-2);
  CHECK(torch::equal(before, s.ours[0]));
}

TEST_CASE("AdamW state saved and loaded continues bit-identically, and a state of other parameters is refused") {
  t::TempDir dir;
  Setup a = make_parameters(), b = make_parameters();
  auto first = ours(a);
  for (int step = 0; step < 3; ++step) {
    set_gradients(a, step, 1.0);
    first.step(1e-2);
  }
  first.save(dir.path() / "optimizer.pt");
  for (size_t i = 0; i < a.ours.size(); ++i) {
    torch::NoGradGuard no_grad;
    b.ours[i].copy_(a.ours[i]);
  }
  auto second = ours(b);
  second.load(dir.path() / "optimizer.pt", torch::kCPU);
  for (int step = 3; step < 6; ++step) {
    set_gradients(a, step, 1.0);
    set_gradients(b, step, 1.0);
    first.step(1e-2);
    second.step(1e-2);
  }
  for (size_t i = 0; i < a.ours.size(); ++i) CHECK(torch::equal(a.ours[i], b.ours[i]));

  auto other_param = torch::zeros({4}, torch::requires_grad());
  training::AdamW other({{{other_param}, 0.0}});
  CHECK_THROWS_AS(other.load(dir.path() / "optimizer.pt", torch::kCPU), DataError);
  t::write_text(dir.path() / "junk.pt", "not an archive");
  CHECK_THROWS_AS(second.load(dir.path() / "junk.pt", torch::kCPU), DataError);
}
