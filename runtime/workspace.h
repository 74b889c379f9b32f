// Activation memory shared by the backbone and the task head. The two never run at the same time
// (the head starts from the backbone's last tokens, which stay in the backbone's own buffer), so
// their temporaries can lie in one block: its size is the larger of the two, not the sum (about
// 30 MB less at 512×512). Each component lays out its buffers as offsets at load (WorkspaceLayout)
// and resolves them against the block's base at run time.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace m3vit::rt {

// Offsets (in floats, 64-byte aligned) of a component's buffers inside the shared block.
struct WorkspaceLayout {
  size_t floats = 0;
  size_t add(size_t n) {
    const size_t at = floats;
    floats += (n + 15) / 16 * 16;
    return at;
  }
};

class Workspace {
 public:
  void reserve(size_t floats) {
    if (floats <= size_) return;
    void* p = std::aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    mem_.reset(static_cast<float*>(p));
    size_ = floats;
  }
  float* base() const { return mem_.get(); }
  size_t bytes() const { return size_ * sizeof(float); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> mem_;
  size_t size_ = 0;
};

}  // namespace m3vit::rt
