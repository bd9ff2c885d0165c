// generator — Python-style generators built from greenlets.
//
// A generator is a greenlet that "yields" values by switching to whoever asked
// for the next one. Generators were the first coroutines most programmers met;
// with greenlets they need no compiler support, and they nest: a generator can
// consume another one while it produces.
#include <any>
#include <cstdio>
#include <functional>
#include <optional>
#include <utility>

#include <grove/greenlet.hpp>

template <class T>
class generator {
 public:
  using yield_fn = std::function<void(T)>;

  // generator runs body lazily; body calls yield(v) for every value it produces.
  explicit generator(std::function<void(yield_fn)> body)
      : g_([body = std::move(body)] {
          body([](T v) { grove::greenlet::current().parent()->switch_to(std::move(v)); });
        }) {}

  // next resumes the body until it yields (a value) or returns (nothing).
  std::optional<T> next() {
    if (g_.dead()) return std::nullopt;
    // Whoever asks is the parent: yielded values and the body's end both go there.
    g_.set_parent(grove::greenlet::current());
    std::any v = g_.switch_to();
    if (g_.dead()) return std::nullopt;
    return std::any_cast<T>(std::move(v));
  }

 private:
  grove::greenlet g_;
};

int main() {
  generator<long> fibonacci([](auto yield) {
    long a = 0, b = 1;
    for (int i = 0; i < 20; ++i) {
      yield(a);
      a = std::exchange(b, a + b);
    }
  });

  // A second generator that consumes the first: only the even Fibonacci numbers.
  generator<long> even([&](auto yield) {
    while (auto v = fibonacci.next()) {
      if (*v % 2 == 0) yield(*v);
    }
  });

  std::printf("even Fibonacci numbers below the 20th:");
  while (auto v = even.next()) std::printf(" %ld", *v);
  std::printf("\n");

  // An endless generator is fine: abandoning it kills it (greenlet_exit) when it goes away.
  generator<int> naturals([](auto yield) {
    for (int n = 1;; ++n) yield(n);
  });
  std::printf("first five naturals from an endless generator:");
  for (int i = 0; i < 5; ++i) std::printf(" %d", *naturals.next());
  std::printf("\n");
}
