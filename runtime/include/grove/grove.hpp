// grove/grove.hpp — everything grove offers, in one include.
#pragma once

#include <grove/async_result.hpp>
#include <grove/channel.hpp>
#include <grove/condition_variable.hpp>
#include <grove/error.hpp>
#include <grove/event.hpp>
#include <grove/greenlet.hpp>
#include <grove/hub.hpp>
#include <grove/hub_group.hpp>
#include <grove/imap_stream.hpp>
#include <grove/io.hpp>
#include <grove/local.hpp>
#include <grove/mutex.hpp>
#include <grove/pool.hpp>
#include <grove/queue.hpp>
#include <grove/semaphore.hpp>
#include <grove/settings.hpp>
#include <grove/sleep.hpp>
#include <grove/socket.hpp>
#include <grove/stack.hpp>
#include <grove/stream_server.hpp>
#include <grove/task.hpp>
#include <grove/thread_pool.hpp>
#include <grove/timeout.hpp>
