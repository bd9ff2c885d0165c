// Built against an installed grove, twice: through CMake and through pkg-config.
#include <any>
#include <cstdio>

#include <grove/grove.hpp>

int main() {
  grove::greenlet main = grove::greenlet::current();
  grove::greenlet g([&](std::any v) {
    const int x = std::any_cast<int>(v);
    return std::any(std::any_cast<int>(main.switch_to(x + 1)) * 2);
  });
  const int first = std::any_cast<int>(g.switch_to(20));
  const int second = std::any_cast<int>(g.switch_to(first));
  std::printf("consumer: %d %d\n", first, second);
  return (first == 21 && second == 42 && g.dead()) ? 0 : 1;
}
