// local.cpp — each greenlet's map of grove::local values, destroyed with it.
//
// The map is a flat vector searched in order: a greenlet holds a handful of
// locals at most, and a task that sets one (a stream_server handler sets one
// each) pays 64 bytes for the vector and its first entry, where an
// unordered_map cost about 250.
#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include <grove/local.hpp>

namespace grove::detail {
namespace {

using local_map = std::vector<std::pair<std::uint64_t, std::unique_ptr<local_slot>>>;

local_map::iterator find_in(local_map& m, std::uint64_t key) noexcept {
  return std::find_if(m.begin(), m.end(), [key](const auto& e) { return e.first == key; });
}

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
  auto it = find_in(*m, key);
  return it == m->end() ? nullptr : it->second.get();
}

local_slot* store_local(std::uint64_t key, std::unique_ptr<local_slot> slot) {
  local_map* m = map_of(current_greenlet(), true);
  if (auto it = find_in(*m, key); it != m->end()) {
    it->second = std::move(slot);
    return it->second.get();
  }
  m->emplace_back(key, std::move(slot));
  return m->back().second.get();
}

void erase_local(std::uint64_t key) {
  if (local_map* m = map_of(current_greenlet(), false); m != nullptr) {
    if (auto it = find_in(*m, key); it != m->end()) {
      // Taken out of the map before it is destroyed: its value's destructor
      // may use locals of this greenlet.
      std::unique_ptr<local_slot> doomed = std::move(it->second);
      m->erase(it);
    }
  }
}

}  // namespace grove::detail
