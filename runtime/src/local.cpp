// local.cpp — each greenlet's map of grove::local values, destroyed with it.
#include <atomic>
#include <unordered_map>

#include <grove/local.hpp>

namespace grove::detail {
namespace {

using local_map = std::unordered_map<std::uint64_t, std::unique_ptr<local_slot>>;

void destroy_locals(greenlet_core* g) {
  // Values may be anything (even other locals' owners): take the map out first.
  std::unique_ptr<local_map> doomed(static_cast<local_map*>(g->locals));
  g->locals = nullptr;
}

local_map* map_of(greenlet_core* g, bool create) {
  if (g->locals == nullptr && create) {
    g->locals = std::make_unique<local_map>().release();
    g->on_destroy = destroy_locals;
  }
  return static_cast<local_map*>(g->locals);
}

}  // namespace

std::uint64_t new_local_key() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

local_slot* find_local(std::uint64_t key) {
  local_map* m = map_of(current_greenlet(), false);
  if (m == nullptr) return nullptr;
  auto it = m->find(key);
  return it == m->end() ? nullptr : it->second.get();
}

local_slot* store_local(std::uint64_t key, std::unique_ptr<local_slot> slot) {
  local_map* m = map_of(current_greenlet(), true);
  auto& place = (*m)[key];
  place = std::move(slot);
  return place.get();
}

void erase_local(std::uint64_t key) {
  if (local_map* m = map_of(current_greenlet(), false); m != nullptr) m->erase(key);
}

}  // namespace grove::detail
