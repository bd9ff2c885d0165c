// grove/imap_stream.hpp — the result stream of group::imap and
// imap_unordered (grove/pool.hpp): results in input order, or as they finish.
#pragma once

#include <grove/detail/task_set.hpp>

namespace grove {

class group;

namespace detail {

// stream_state is an imap stream's bookkeeping, shared by the stream and the
// task that feeds it (so it lives as long as either).
template <class R>
struct stream_state {
  struct item {
    stream_state* owner = nullptr;
    std::size_t index = 0;
    std::optional<task<R>> result;      // its task, until its result is yielded
    std::optional<listed_waiter> hook;  // in the task's joiners while it runs
    bool done = false;
    bool taken = false;
  };

  stream_state(group& g, bool any_order) : owner(g), unordered(any_order) {}
  stream_state(const stream_state&) = delete;
  stream_state& operator=(const stream_state&) = delete;

  group& owner;
  const bool unordered;
  std::deque<item> items;             // items[k] is input number first + k
  std::size_t first = 0;              // the input number of items.front()
  std::size_t next_in_order = 0;      // imap: the input number to yield next
  std::deque<std::size_t> completed;  // imap_unordered: finished, not yet yielded, oldest first
  std::size_t spawned = 0;            // items whose task exists
  std::size_t yielded = 0;            // items handed to the consumer
  bool input_done = false;            // the feeder has spawned everything it will
  bool closing = false;               // the stream is being destroyed: spawn nothing more
  std::exception_ptr failure;         // why the feeder stopped early, rethrown last
  std::optional<task<void>> feeder;   // dropped when the stream closes (it holds this state)
  wait_list changed;                  // the consumer waits here for anything new

  // mark_done records that the task of it has finished.
  void mark_done(item& it) {
    it.done = true;
    if (unordered) completed.push_back(it.index);
    wake_all(changed);
  }

  // on_item_finished runs inside an item task's finish().
  static void on_item_finished(waiter& w) {
    auto& it = *static_cast<item*>(w.slot);
    it.owner->mark_done(it);
  }

  // ready is the item to yield next, if it has finished.
  item* ready() noexcept {
    if (unordered) return completed.empty() ? nullptr : &items[completed.front() - first];
    const std::size_t k = next_in_order - first;
    return k < items.size() && items[k].done ? &items[k] : nullptr;
  }

  // take hands over the result of it (or rethrows what its task died of).
  R take(item& it) {
    task<R> t = std::move(*it.result);
    const std::size_t index = it.index;
    it.result.reset();
    it.taken = true;
    ++yielded;
    if (unordered) {
      completed.pop_front();
    } else {
      ++next_in_order;
    }
    while (!items.empty() && items.front().taken) {
      items.pop_front();
      ++first;
    }
    if (t.killed()) std::rethrow_exception(killed_item(index));
    return t.get();  // finished: never blocks
  }
};

}  // namespace detail

// imap_stream is the result stream of imap/imap_unordered: next() yields
// results one by one, and a range-for walks them. Move-only. Destroying it
// before the end kills the tasks it started and waits for them to finish
// (if that wait is itself interrupted, the interrupt is raised again at the
// caller's next blocking call). Use it on the thread of its group.
template <class R>
class imap_stream {
 public:
  // A moved-from stream is closed: next() returns nothing.
  imap_stream(imap_stream&& o) noexcept = default;
  // Assigning closes this stream (see close) and takes over o's.
  imap_stream& operator=(imap_stream&& o) noexcept {
    if (this != &o) {
      close();
      s_ = std::move(o.s_);
      current_ = std::move(o.current_);
    }
    return *this;
  }
  imap_stream(const imap_stream&) = delete;
  imap_stream& operator=(const imap_stream&) = delete;
  ~imap_stream() { close(); }

  // next waits for the next result and returns it, or an empty optional once
  // every result has been yielded. Rethrows the exception an item's function
  // threw, in that item's turn (the stream then goes on with the next item);
  // an item whose task was killed gives grove::error. Throws timeout_error or
  // greenlet_exit if the caller is interrupted while it waits.
  std::optional<R> next() {
    if (!s_) return std::nullopt;
    detail::stream_state<R>& s = *s_;
    for (;;) {
      if (auto* it = s.ready()) return std::optional<R>(s.take(*it));
      if (s.input_done && s.yielded == s.spawned) {
        if (s.failure) std::rethrow_exception(std::exchange(s.failure, nullptr));
        return std::nullopt;
      }
      detail::listed_waiter w(s.changed, "imap result", &s);
      detail::park(w);
    }
  }

  // close kills the tasks the stream started, waits for them, and ends the
  // stream (next then returns nothing). The destructor calls it.
  void close() noexcept {
    if (!s_) return;
    std::shared_ptr<detail::stream_state<R>> st = std::move(s_);
    detail::stream_state<R>& s = *st;
    s.closing = true;
    std::vector<detail::task_hold> victims;
    if (s.feeder) {
      // The feeder first, so that it starts nothing more.
      victims.emplace_back(detail::task_access::base(*s.feeder));
      detail::end_tasks(victims);
      victims.clear();
    }
    for (const auto& it : s.items) {
      if (it.result && !it.done) victims.emplace_back(detail::task_access::base(*it.result));
    }
    detail::end_tasks(victims);
    s.feeder.reset();  // the feeding task holds the state: let go of it
  }

  // iterator walks the stream in a range-for; an input iterator: each
  // increment waits for and yields the next result.
  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using iterator_category = std::input_iterator_tag;
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    using reference = R&;

    iterator() = default;
    R& operator*() const { return *stream_->current_; }
    R* operator->() const { return &*stream_->current_; }
    iterator& operator++() {
      stream_->current_ = stream_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& i, std::default_sentinel_t) noexcept { return i.at_end(); }

   private:
    friend class imap_stream;
    explicit iterator(imap_stream* s) noexcept : stream_(s) {}
    bool at_end() const noexcept { return stream_ == nullptr || !stream_->current_; }
    imap_stream* stream_ = nullptr;
  };

  // begin waits for the first result (see next) and points at it.
  iterator begin() {
    current_ = next();
    return iterator(this);
  }
  // end is the sentinel that an iterator equals once the stream is exhausted.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend class group;
  explicit imap_stream(std::shared_ptr<detail::stream_state<R>> s) noexcept : s_(std::move(s)) {}

  std::shared_ptr<detail::stream_state<R>> s_;
  std::optional<R> current_;
};

}  // namespace grove
