// greenlet_pingpong — three greenlets hand control round a ring by hand.
//
// The classic first greenlet demo: nothing schedules anything. Each greenlet
// runs until it explicitly switches to the next one, passing a value along.
// When one finishes, its return value goes to its parent (main), and the two
// still suspended are killed when their last handles go away at the end of
// main: greenlet_exit unwinds their stacks, so their destructors run.
#include <any>
#include <cstdio>
#include <optional>
#include <string>

#include <grove/greenlet.hpp>

namespace {

// farewell's destructor shows when a greenlet's stack is unwound: when its run
// returns, or when greenlet_exit (a kill) unwinds it.
struct farewell {
  const char* name;
  ~farewell() { std::printf("  %s: stack unwound, destructors ran\n", name); }
};

}  // namespace

int main() {
  std::optional<grove::greenlet> ring[3];
  const char* names[3] = {"A", "B", "C"};
  constexpr int last_pass = 9;

  for (int i = 0; i < 3; ++i) {
    ring[i].emplace([&, i](std::any arg) {
      farewell bye{names[i]};
      int ball = std::any_cast<int>(arg);
      while (ball < last_pass) {
        std::printf("%s has the ball (pass %d), switching to %s\n", names[i], ball, names[(i + 1) % 3]);
        ball = std::any_cast<int>(ring[(i + 1) % 3]->switch_to(ball + 1));
      }
      std::printf("%s catches pass %d and keeps the ball: its run returns\n", names[i], ball);
      return std::any(std::string(names[i]));
    });
    ring[i]->set_name(names[i]);
  }

  const std::any winner = ring[0]->switch_to(1);
  std::printf("main: %s finished, its result came back to its parent (main)\n",
              std::any_cast<std::string>(winner).c_str());
  for (auto& g : ring) std::printf("  %s is %s\n", g->name().c_str(), g->dead() ? "dead" : "suspended");
  std::printf("main: dropping the last handles kills the suspended ones:\n");
  for (auto& g : ring) g.reset();
  std::printf("main: done\n");
}
