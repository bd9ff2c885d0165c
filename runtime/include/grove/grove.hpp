// grove/grove.hpp — everything grove offers, in one include.
#pragma once

#include <grove/error.hpp>
#include <grove/greenlet.hpp>
#include <grove/hub.hpp>
#include <grove/sleep.hpp>
#include <grove/stack.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>
