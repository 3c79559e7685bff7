// A TorchScript export run by LibTorch, as a C++ program would deploy it: `torch::jit::load`, then
// the module on a batch of uint8 images read from a raw file. Prints one row of outputs per image.
// Usage: load_torchscript MODEL.torchscript IMAGES.u8 N C H W
#include <torch/script.h>

#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 7) {
    std::cerr << "usage: load_torchscript MODEL IMAGES N C H W" << std::endl;
    return 2;
  }
  torch::jit::script::Module module = torch::jit::load(argv[1]);
  std::ifstream file(argv[2], std::ios::binary);
  std::vector<uint8_t> pixels((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<int64_t> shape = {std::stoll(argv[3]), std::stoll(argv[4]), std::stoll(argv[5]), std::stoll(argv[6])};
  auto images = torch::from_blob(pixels.data(), shape, torch::kUInt8).clone();
  auto outputs = module.forward({images}).toTensor().contiguous();
  std::cout << std::setprecision(9);
  for (int64_t i = 0; i < outputs.size(0); ++i) {
    for (int64_t j = 0; j < outputs.size(1); ++j) {
      std::cout << outputs[i][j].item<float>() << (j + 1 < outputs.size(1) ? " " : "\n");
    }
  }
  return 0;
}
