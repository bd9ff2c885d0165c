// chat_server [PORT] — a line-based chat: every line a client sends is pushed
// to every connected client (the "push to websocket clients" pattern). Each
// client has a reader task and a writer task joined by a queue, so one slow
// client never holds up the others. With no PORT, it runs a demo: three
// clients in this process join, talk, and print what they receive.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <grove/grove.hpp>

#include "serve_until_signal.hpp"

using namespace std::chrono_literals;

namespace {

struct client {
  grove::queue<std::string> outbox{256};  // lines waiting to be written to this client
};

class chat {
 public:
  // broadcast queues line for every client; one whose outbox is full is too slow and misses it.
  void broadcast(const std::string& line) {
    for (client* c : clients_) c->outbox.try_put(line);
  }

  void serve(grove::socket conn, grove::address peer) {
    client me;
    clients_.insert(&me);
    const std::string who = peer.to_string();
    auto writer = grove::spawn([&] {
      for (;;) conn.send_all(me.outbox.get());
    });
    broadcast("* " + who + " joined\n");
    std::string pending;
    char buf[4096];
    try {
      while (const std::size_t n = conn.recv(buf, sizeof buf)) {
        pending.append(buf, n);
        for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos; pending.erase(0, eol + 1)) {
          broadcast(who + ": " + pending.substr(0, eol + 1));
        }
      }
    } catch (const std::system_error&) {
      // the client went away abruptly: same as a close
    }
    clients_.erase(&me);
    writer.kill();
    broadcast("* " + who + " left\n");
  }

 private:
  std::set<client*> clients_;
};

int demo() {
  chat room;
  grove::stream_server server("127.0.0.1:0", [&](grove::socket c, grove::address p) { room.serve(std::move(c), p); });
  server.start();
  const std::uint16_t port = server.address().port();
  std::vector<grove::task<void>> people;
  for (const char* name : {"ann", "bob", "cat"}) {
    people.push_back(grove::spawn([port, name] {
      grove::socket s = grove::connect("127.0.0.1", port, 2s);
      grove::sleep(50ms);  // everyone has joined
      s.send_all(std::string("hello from ") + name + "\n");
      grove::sleep(100ms);  // let the messages go round
      s.shutdown();
      std::string heard;
      char buf[4096];
      while (const std::size_t n = s.recv(buf, sizeof buf)) heard.append(buf, n);
      std::printf("--- %s heard:\n%s", name, heard.c_str());
    }));
  }
  grove::joinall(people);
  server.stop(1s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 1) return demo();
  chat room;
  return examples::serve_until_signal("chat_server", argc, argv,
                                      [&](grove::socket c, grove::address p) { room.serve(std::move(c), p); });
}
