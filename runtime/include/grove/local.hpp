// grove/local.hpp — per-task storage (gevent.local).
//
//   grove::local<std::string> request_id;
//   *request_id = "abc";   // this task's value; every other task sees its own
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include <grove/detail/wait.hpp>

namespace grove {

namespace detail {

struct local_slot {
  local_slot() = default;
  local_slot(const local_slot&) = delete;
  local_slot& operator=(const local_slot&) = delete;
  virtual ~local_slot() = default;
};

template <class T>
struct local_slot_of final : local_slot {
  template <class... A>
  explicit local_slot_of(A&&... a) : value(std::forward<A>(a)...) {}
  T value;
};

// find_local returns the current greenlet's slot for key, or nullptr.
local_slot* find_local(std::uint64_t key);
// store_local gives the current greenlet a slot for key (replacing any).
local_slot* store_local(std::uint64_t key, std::unique_ptr<local_slot> slot);
// erase_local drops the current greenlet's slot for key.
void erase_local(std::uint64_t key);
std::uint64_t new_local_key() noexcept;

}  // namespace detail

// local<T> holds one T per task (per greenlet, the thread's main greenlet
// included). A task's value is made on its first access, as a copy of the
// initial value given at construction (or by T's default constructor), and
// destroyed when the task's greenlet goes away. Use it from the tasks of one
// thread or several: each greenlet only ever sees its own value.
template <class T>
class local {
 public:
  // local() gives each task a default-constructed T.
  local() : key_(detail::new_local_key()), make_([] { return std::make_unique<detail::local_slot_of<T>>(); }) {}
  // local(initial) gives each task a copy of initial.
  explicit local(T initial)
      : key_(detail::new_local_key()),
        make_([initial = std::move(initial)] { return std::make_unique<detail::local_slot_of<T>>(initial); }) {}
  local(const local&) = delete;
  local& operator=(const local&) = delete;

  // get returns the current task's value, making it on first access.
  T& get() {
    detail::local_slot* s = detail::find_local(key_);
    if (s == nullptr) s = detail::store_local(key_, make_());
    return static_cast<detail::local_slot_of<T>*>(s)->value;
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

  // has_value: the current task has accessed (made) its value.
  bool has_value() const { return detail::find_local(key_) != nullptr; }
  // reset destroys the current task's value; the next access makes a new one.
  void reset() { detail::erase_local(key_); }

 private:
  std::uint64_t key_;
  std::function<std::unique_ptr<detail::local_slot>()> make_;
};

}  // namespace grove
