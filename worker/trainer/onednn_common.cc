#include "worker/trainer/onednn_common.h"

namespace det::trainer::onednn {

const dnnl::engine& Engine() {
  static const auto* const engine =
      new dnnl::engine(dnnl::engine::kind::cpu, 0);  // never destroyed
  return *engine;
}

dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

memory::desc Desc(const memory::dims& dims, Tag tag) {
  return memory::desc(dims, memory::data_type::f32, tag);
}

memory::desc Described(const torch::Tensor& t) {
  return memory::desc(memory::dims(t.sizes().begin(), t.sizes().end()),
                      memory::data_type::f32,
                      memory::dims(t.strides().begin(), t.strides().end()));
}

Buffer Allocate(const memory::desc& desc) {
  Buffer b;
  b.storage =
      torch::empty({static_cast<int64_t>(desc.get_size())}, torch::kUInt8);
  b.mem = memory(desc, Engine(), b.storage.data_ptr());
  return b;
}

Buffer As(const torch::Tensor& t, const memory::desc& want) {
  memory user(Described(t), Engine(), t.data_ptr());
  if (user.get_desc() == want) return {t, user};
  Buffer b = Allocate(want);
  dnnl::reorder(user, b.mem).execute(Stream(), user, b.mem);
  return b;
}

void CopyOut(memory from, const torch::Tensor& to) {
  memory user(Described(to), Engine(), to.data_ptr());
  dnnl::reorder(from, user).execute(Stream(), from, user);
}

}  // namespace det::trainer::onednn
